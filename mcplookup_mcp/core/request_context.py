"""What the request being served is, for code below the transports: its id, the client, the MCP tool.

Set by app.ObserveMiddleware for every HTTP request. Tasks the MCP SDK starts for a call copy the
context, so they see the same object: a tool records its name and outcome on it, and the middleware
reads them back for the access log and the per-tool latency histogram.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestInfo:
    request_id: str
    transport: str = "rest"
    client: str | None = None
    user_agent: str | None = None
    tool: str | None = None
    outcome: str | None = None


_CURRENT: ContextVar[RequestInfo | None] = ContextVar("mcplookup_request", default=None)


def current() -> RequestInfo | None:
    return _CURRENT.get()


def begin(info: RequestInfo) -> object:
    return _CURRENT.set(info)


def end(token: object) -> None:
    _CURRENT.reset(token)  # type: ignore[arg-type]


def note_tool(tool: str, outcome: str) -> None:
    """The MCP tool this request called and how it ended (ok, or the error's slug)."""
    info = _CURRENT.get()
    if info is not None:
        info.tool, info.outcome = tool, outcome
