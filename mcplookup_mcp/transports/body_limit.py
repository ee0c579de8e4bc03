"""The request body limit (MCPLOOKUP_MAX_BODY_BYTES) of REST and `/mcp`.

A body is refused with 413 as soon as it is known to be too large: at once when its Content-Length says
so, else (a chunked body) when the bytes read so far pass the limit. Nothing past the limit is read or
kept. REST raises BodyTooLarge, which becomes an RFC 9457 problem; `/mcp` answers a JSON-RPC error, the
form an MCP client reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcplookup_mcp.core.errors import BodyTooLarge

# JSON-RPC's "Invalid Request", the code the SDK gives its own transport-level refusals.
_INVALID_REQUEST = -32600


def declared_length(scope: Scope) -> int | None:
    """The Content-Length the client sent, or None (absent, or not a plain number)."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge once it passes `limit` bytes."""
    declared = declared_length(request.scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    return b"".join([chunk async for chunk in _counted(request.stream(), limit)])


async def _counted(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        yield chunk


class McpBodyLimit:
    """In front of both MCP paths (the direct discover_servers path and the SDK): reads the body under
    the limit, then hands it on whole, so neither reads anything the limit refuses."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": bytes(body), "more_body": False}

        async def replay() -> Message:
            nonlocal whole
            if whole is None:
                return await receive()
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = BodyTooLarge(self.limit)
        error = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": _INVALID_REQUEST, "message": refusal.message, "data": refusal.extensions()},
        }
        response = Response(json.dumps(error), status_code=413, media_type="application/json")
        await response(scope, receive, send)
