"""The one door to the mcp SDK's insides.

Everything the service uses of the SDK beyond its documented surface (`MCPServer`, `@mcp.tool`, `Context`,
`ToolError`, `MCPError`, the `mcp.types` models, `TransportSecuritySettings`, `streamable_http_app`) goes
through this module: the server's private tool manager, subscription bus and low-level server, its
`tools/list` handler, the streamable-HTTP transport's Accept and Host/Origin checks, the inbound routing
checks of the modern revision, and the per-revision wire codecs of `mcp_types`. Written against mcp 2.3;
when the pin moves, this file is the one to adapt, and tests/test_mcp_sdk.py names what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import (
    MCP_PARAM_HEADER_PREFIX,
    X_MCP_HEADER_KEY,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.types import ListToolsResult, PaginatedRequestParams
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types import methods as _methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "ENVELOPE_META_KEYS",
    "HANDSHAKE_VERSIONS",
    "HEADER_MIRROR_KEY",
    "MODERN_VERSIONS",
    "PARAM_HEADER_PREFIX",
    "SERVER_INFO_META_KEY",
    "HostOriginCheck",
    "SdkServer",
    "accepts_json_reply",
    "is_plain_modern_call",
    "serialize_tools_call_result",
    "validate_tools_call_params",
]

# Protocol revisions: those negotiated by initialize, and the modern ones that carry it in every request.
HANDSHAKE_VERSIONS: frozenset[str] = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
MODERN_VERSIONS: frozenset[str] = frozenset(MODERN_PROTOCOL_VERSIONS)
# Request headers that mirror tool arguments (`Mcp-Param-*`), lower case as ASGI gives them, and the
# input-schema key that asks for them.
PARAM_HEADER_PREFIX: bytes = MCP_PARAM_HEADER_PREFIX.lower().encode()
HEADER_MIRROR_KEY: str = X_MCP_HEADER_KEY
# The `_meta` keys of a modern request's envelope (nothing else: no progress token, no extension).
ENVELOPE_META_KEYS: frozenset[str] = frozenset(
    {PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY}
)


class SdkServer(MCPServer):
    """`MCPServer` with typed access to what the SDK keeps private, and a hook before `tools/list`."""

    def registered_tool(self, name: str) -> Tool | None:
        return self._tool_manager.get_tool(name)

    def tool_for(self, name: str) -> Tool:
        tool = self.registered_tool(name)
        if tool is None:
            raise KeyError(name)
        return tool

    def tool_names(self) -> list[str]:
        return [tool.name for tool in self._tool_manager.list_tools()]

    def input_schema(self, name: str) -> dict[str, Any]:
        """The tool's JSON schema of its arguments (a copy); KeyError for a tool not registered."""
        return dict(self.tool_for(name).parameters)

    async def tool_value(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """What the tool returns, before the SDK turns it into a CallToolResult. Raises as `call_tool`."""
        if context is None:
            context = self.new_context()
        return await self._tool_manager.call_tool(name, arguments, context, convert_result=False)

    def new_context(self, kind: type[Context] = Context, **fields: Any) -> Context:
        """A tool context for a call made outside the SDK's request handling (`kind` a Context subclass)."""
        return kind(mcp_server=self, subscriptions=self._subscriptions, **fields)

    def cache_hint(self, method: str) -> Any:
        return self._lowlevel_server.cache_hints.get(method)

    @property
    def server_info_stamp(self) -> dict[str, Any]:
        """The serverInfo a modern revision's reply carries in its `_meta`."""
        return self._lowlevel_server.server_info_stamp

    def check_list_tools(self, params: PaginatedRequestParams | None) -> None:
        """Called before every `tools/list`; raise MCPError to refuse it."""

    async def _handle_list_tools(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        self.check_list_tools(params)
        return await super()._handle_list_tools(ctx, params)


class HostOriginCheck:
    """The transport's DNS-rebinding check (Host, Origin) and, for a POST, its Content-Type check."""

    def __init__(self, settings: TransportSecuritySettings) -> None:
        self._middleware = TransportSecurityMiddleware(settings)

    async def refusal(self, request: Request, *, is_post: bool) -> Response | None:
        """The SDK's own refusal of the request, or None when it passes."""
        return await self._middleware.validate_request(request, is_post=is_post)


def accepts_json_reply(request: Request) -> bool:
    """Whether the request's Accept admits a JSON reply, by the transport's own reading (wildcards too)."""
    return check_accept_headers(request)[0]


def is_plain_modern_call(decoded: Mapping[str, Any], request: Request) -> bool:
    """Whether a modern-revision request is routed as the SDK would route it: its routing headers
    agree with the body and none is repeated."""
    if find_duplicated_routing_header(request.headers.items()) is not None:
        return False
    verdict = classify_inbound_request(decoded, headers=dict(request.headers))
    return isinstance(verdict, InboundModernRoute)


def validate_tools_call_params(version: str, params: Mapping[str, Any]) -> None:
    """Raises ValueError (pydantic's ValidationError is one) or KeyError where the revision's
    `tools/call` params are not valid."""
    _methods.validate_client_request("tools/call", version, params)


def serialize_tools_call_result(version: str, dumped: Mapping[str, Any]) -> dict[str, Any]:
    """A dumped CallToolResult in the wire form of the revision, as the SDK's runner sends it."""
    return _methods.serialize_server_result("tools/call", version, dumped)
