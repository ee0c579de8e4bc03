"""HTTP rules of `/mcp` that the SDK's stateless JSON-response transport gets wrong, in front of both paths.

- Only POST. The server offers no event stream and keeps no sessions, so GET and DELETE are 405 with
  `Allow: POST`, which streamable HTTP (2025-03-26, 2025-06-18) allows a server without a stream. The
  SDK opened a GET stream that sent nothing and never ended: one file descriptor held per request.
- JSON-RPC batches. Revision 2025-03-26 (and 2024-11-05) requires servers to accept them, and a client
  of that revision sends no MCP-Protocol-Version header; the SDK refused every batch. Each entry is
  answered here by the app behind, one at a time, as if posted alone; the replies come back as one
  array. From 2025-06-18 on, batching is gone from the protocol: a batch is an Invalid Request (-32600),
  not the SDK's -32602 of the handshake revisions.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcplookup_mcp.transports.mcp_sdk import HANDSHAKE_VERSIONS, HostOriginCheck, accepts_json_reply

# The revisions whose clients may send batches; None: no header, which means 2025-03-26.
BATCH_VERSIONS = (None, "2024-11-05", "2025-03-26")
# Entries are answered one after another; the body limit bounds their size, this their number.
MAX_BATCH = 32
_INVALID_REQUEST = -32600
_BATCH = re.compile(rb"[ \t\r\n]*\[")


def _error(request_id: Any, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": _INVALID_REQUEST, "message": message}}


def _json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(value), status_code=status, media_type="application/json", headers=headers)


class McpHttpGate:
    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.security = HostOriginCheck(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            refusal = await self.security.refusal(Request(scope, receive), is_post=False)
            if refusal is None:
                refusal = _json_response(
                    _error(
                        None,
                        f"Method Not Allowed: {scope['method']} /mcp; this server offers no event stream and "
                        "keeps no sessions: send each JSON-RPC message with POST",
                    ),
                    status=405,
                    headers={"Allow": "POST"},
                )
            await refusal(scope, receive, send)
            return
        # Read from the channel and the scope directly: this runs before every MCP call (8 µs with a
        # Request object, 2-4 µs this way; a cached discover_servers call is some 500 µs).
        body, more = b"", True
        while more:
            chunk = await receive()
            if chunk["type"] != "http.request":
                return  # the client went away
            body += chunk.get("body", b"")
            more = chunk.get("more_body", False)
        version = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"mcp-protocol-version"), None
        )
        if not _BATCH.match(body) or (version is not None and version not in HANDSHAKE_VERSIONS):
            # Not a batch; or the modern revision, whose batches the SDK refuses rightly (-32600); or an
            # unknown revision, which it refuses too.
            await self.app(scope, replay_body(body, receive), send)
            return
        entries = _parsed(body)
        if not isinstance(entries, list):  # not JSON after all: the SDK answers its parse error
            await self.app(scope, replay_body(body, receive), send)
            return
        request = Request(scope, replay_body(body, receive))
        if await self.security.refusal(request, is_post=True) is not None or not accepts_json_reply(request):
            # The SDK gives its own answer to a refused Host, Origin, Content-Type or Accept.
            await self.app(scope, replay_body(body, receive), send)
            return
        if version not in BATCH_VERSIONS:
            message = (
                f"Invalid Request: protocol revision {version} has no JSON-RPC batches (removed in "
                "2025-06-18); send each request in a POST of its own"
            )
            await _json_response(_error(None, message), status=400)(scope, receive, send)
            return
        await self._batch(scope, entries, receive, send)

    async def _batch(self, scope: Scope, entries: list[Any], receive: Receive, send: Send) -> None:
        if not entries or len(entries) > MAX_BATCH:
            what = "an empty batch" if not entries else f"a batch of {len(entries)} entries"
            await _json_response(
                _error(None, f"Invalid Request: {what}; a batch holds 1 to {MAX_BATCH} entries"), status=400
            )(scope, receive, send)
            return
        replies: list[Any] = []
        for entry in entries:
            reply = await self._entry(scope, entry, receive)
            if reply is not None:
                replies.append(reply)
        if replies:
            await _json_response(replies)(scope, receive, send)
        else:  # only notifications and responses
            await Response(status_code=202)(scope, receive, send)

    async def _entry(self, scope: Scope, entry: Any, receive: Receive) -> Any:
        """The reply to one entry, answered by the app behind as if posted alone; None for none."""
        if not isinstance(entry, dict):
            return _error(None, "Invalid Request: a batch entry must be a JSON-RPC request or notification")
        request_id = entry.get("id")
        if entry.get("method") == "initialize":
            return _error(
                request_id, "Invalid Request: initialize must not be part of a batch; send it alone first"
            )
        encoded = json.dumps(entry).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(encoded)).encode()))
        status = 500
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app({**scope, "headers": headers}, replay_body(encoded, receive), capture)
        answer = b"".join(chunks)
        if status == 202 or not answer:
            return None
        try:
            reply = json.loads(answer)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or "jsonrpc" not in reply:
            refused = answer[:200].decode(errors="replace")
            return _error(request_id, f"the entry was refused (HTTP {status}): {refused}")
        if reply.get("id") is None and "error" in reply and request_id is not None:
            reply["id"] = request_id
        return reply


def _parsed(body: bytes) -> Any:
    """The body's JSON value by the SDK's own parser (which refuses lone surrogates and deep nesting),
    or None."""
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        return None


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the next app the body already read, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
