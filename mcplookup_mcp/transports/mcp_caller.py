"""Who calls an MCP tool: the client address (ClientAddressMiddleware has resolved it behind trusted
proxies into the scope) and the API key sent, passed on to the service for its rate limits.

Through the SDK a tool reads them from the HTTP request in its context. The discover_servers fast path
(mcp_fast_path.py) answers without the SDK's request context, so it names the caller itself in a
`CallerContext`.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from mcplookup_mcp.core import keys
from mcplookup_mcp.core.client_address import Origin


class CallerContext(Context):
    """A tool context that names its caller, for a call made outside the SDK's request handling."""

    _caller: Origin

    def __init__(self, caller: Origin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._caller = caller

    @property
    def caller(self) -> Origin:
        return self._caller


def caller_of(ctx: Context) -> Origin:
    if isinstance(ctx, CallerContext):
        return ctx.caller
    return caller_from(ctx.request_context.request)


def caller_from(request: Any) -> Origin:
    """The caller of an HTTP request (a Starlette request); "mcp" when there is none to name."""
    client = getattr(request, "client", None)
    headers = getattr(request, "headers", None) or {}
    return Origin(
        str(client.host) if client is not None else "mcp", keys.bearer_token(headers.get("authorization"))
    )
