"""A direct path for the one MCP call agents make most: `tools/call` of `discover_servers`.

The SDK answers every MCP request through its whole pipeline: envelope models, middleware, and the
conversions of the tool's answer (`discover_reply`'s text and structured content, the JSON-RPC reply).
For a cached discovery answer the tool function, cache lookup included, was 6 % of a call (py-spy). This
path answers a plain, well-formed `discover_servers` call itself: it runs the same tool (same argument
checks, same error texts, same service call) and encodes the reply once per answer and protocol
revision, in the form of `discover_reply` and through the SDK's own result sieve. Anything else, or
anything it is unsure of, it hands to the SDK untouched: other methods, batches, notifications,
sessions, `Mcp-Param-*` headers, a failed header or envelope check, a body without Content-Length.
Tests compare its replies with the SDK's for the same requests. A body over the limit never reaches it
(body_limit.McpBodyLimit stands in front of both paths).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core
import structlog
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcplookup_mcp.core.metrics import MCP_FAST_PATH
from mcplookup_mcp.core.models import DiscoverResult
from mcplookup_mcp.transports.mcp_caller import caller_from
from mcplookup_mcp.transports.mcp_http import replay_body
from mcplookup_mcp.transports.mcp_sdk import (
    ENVELOPE_META_KEYS,
    HANDSHAKE_VERSIONS,
    HEADER_MIRROR_KEY,
    MODERN_VERSIONS,
    PARAM_HEADER_PREFIX,
    SERVER_INFO_META_KEY,
    HostOriginCheck,
    accepts_json_reply,
    is_plain_modern_call,
    serialize_tools_call_result,
    validate_tools_call_params,
)
from mcplookup_mcp.transports.mcp_tools import DISCOVER_TOOL, RegistryMCPServer

log = structlog.get_logger("mcplookup.mcp")

_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS = frozenset({"name", "arguments", "_meta"})
# Stand-ins for an answer's two forms in a reply envelope; no serializer writes them otherwise.
_TEXT_SLOT = "\x00mcplookup text\x00"
_STRUCTURED_SLOT = "\x00mcplookup structured\x00"


class DiscoverFastPath:
    """ASGI app in front of the SDK's streamable-HTTP app (stateless, JSON replies)."""

    def __init__(self, sdk_app: ASGIApp, mcp: RegistryMCPServer, security: TransportSecuritySettings) -> None:
        self.sdk_app = sdk_app
        self.mcp = mcp
        self.security = HostOriginCheck(security)
        self._envelopes: dict[str, tuple[bytes, ...]] = {}
        # These need the SDK's pipeline: cache hints on tools/call, and arguments mirrored in Mcp-Param-*
        # headers (which the SDK checks against the body). Of its context the tool reads only who calls,
        # which this path names itself (mcp_caller.CallerContext).
        self.enabled = mcp.cache_hint("tools/call") is None and not _mentions(
            mcp.input_schema(DISCOVER_TOOL), HEADER_MIRROR_KEY
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version = self._version_if_eligible(scope) if self.enabled else None
        if version is None:
            await self.sdk_app(scope, receive, send)
            return
        request = Request(scope, receive)
        if await self.security.refusal(request, is_post=True) is not None:
            await self._decline(scope, receive, send)
            return
        if not accepts_json_reply(request):
            await self._decline(scope, receive, send)
            return
        body = await request.body()
        call = _parse(body, version, request)
        if call is None:
            await self._decline(scope, replay_body(body, receive), send)
            return
        request_id, arguments = call
        try:
            answer = await self.mcp.call_tool_unconverted(
                DISCOVER_TOOL, arguments, caller=caller_from(request)
            )
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError):
                log.error("tool crashed", tool=DISCOVER_TOOL, error=type(exc.__cause__).__name__)
            result = self._wire(
                CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True), version
            )
        else:
            result = answer.encoded_as(f"mcp {version}", lambda a: self._answer_wire(a, version))
        MCP_FAST_PATH.labels(result="served").inc()
        reply = b'{"jsonrpc":"2.0","id":' + json.dumps(request_id).encode() + b',"result":' + result + b"}"
        await Response(reply, media_type="application/json")(scope, receive, send)

    async def _decline(self, scope: Scope, receive: Receive, send: Send) -> None:
        MCP_FAST_PATH.labels(result="declined").inc()
        await self.sdk_app(scope, receive, send)

    def _version_if_eligible(self, scope: Scope) -> str | None:
        """The protocol revision of a POST that may be a discover_servers call, judged on headers alone."""
        if scope["method"] != "POST":
            return None
        version = method = name = length = None
        for key, value in scope["headers"]:
            if key == b"mcp-protocol-version":
                version = value.decode("latin-1")
            elif key == b"mcp-method":
                method = value
            elif key == b"mcp-name":
                name = value
            elif key == b"content-length":
                length = value
            elif key == b"mcp-session-id" or key.startswith(PARAM_HEADER_PREFIX):
                return None
        if length is None or not length.isdigit():
            return None
        if version in MODERN_VERSIONS:
            return version if method == b"tools/call" and name == DISCOVER_TOOL.encode() else None
        return version if version in HANDSHAKE_VERSIONS else None

    def _answer_wire(self, answer: DiscoverResult, version: str) -> bytes:
        """What `_wire(discover_reply(answer))` gives, without walking the answer again (0.45 ms of a fresh
        answer): the answer's own JSON, as the text block's string and as its structured content, set
        into the envelope that this revision's serializer made once around two placeholders."""
        parts = self._envelopes.get(version)
        if parts is None:
            parts = self._envelopes[version] = self._envelope(version)
        encoded = answer.encoded()
        text = pydantic_core.to_json(encoded.decode())
        if len(parts) == 2:  # a revision without structured content
            return self._as_sdk_escapes(parts[0] + text + parts[1], version)
        return self._as_sdk_escapes(parts[0] + text + parts[1] + encoded + parts[2], version)

    @staticmethod
    def _as_sdk_escapes(wire: bytes, version: str) -> bytes:
        """The SDK writes a modern revision's reply with `json.dumps`, which escapes every non-ASCII
        character (and DEL) as `\\uXXXX`; pydantic writes UTF-8. Same JSON value, but the bytes must match
        too. Outside strings JSON is plain ASCII, so escaping character by character is exact."""
        if version not in MODERN_VERSIONS or not _NON_ASCII.search(wire.decode()):
            return wire
        return _NON_ASCII.sub(_escape, wire.decode()).encode()

    def _envelope(self, version: str) -> tuple[bytes, ...]:
        placeholder = CallToolResult(
            content=[TextContent(type="text", text=_TEXT_SLOT)], structured_content={_STRUCTURED_SLOT: 0}
        )
        wire = self._wire(placeholder, version)
        before, _, rest = wire.partition(pydantic_core.to_json(_TEXT_SLOT))
        between, found, after = rest.partition(pydantic_core.to_json({_STRUCTURED_SLOT: 0}))
        return (before, between, after) if found else (before, rest)

    def _wire(self, result: BaseModel, version: str) -> bytes:
        """The result object as the SDK's runner puts it on the wire for this revision."""
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        dumped = serialize_tools_call_result(version, dumped)
        if version in MODERN_VERSIONS:
            dumped["_meta"] = {
                **(dumped.get("_meta") or {}),
                SERVER_INFO_META_KEY: self.mcp.server_info_stamp,
            }
        # pydantic's encoder: 73 µs for a 25 kB answer of ten servers, the standard library's 202 µs.
        return self._as_sdk_escapes(pydantic_core.to_json(dumped), version)


_NON_ASCII = re.compile(r"[^\x00-\x7e]")


def _escape(found: re.Match[str]) -> str:
    """One character as json.dumps escapes it: a \\uXXXX, or a surrogate pair beyond the BMP."""
    point = ord(found.group())
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def _parse(body: bytes, version: str, request: Request) -> tuple[int | str, dict[str, Any]] | None:
    """The request id and arguments of a single, plain discover_servers call; None for anything else."""
    try:
        # The SDK's parser: what it refuses (a lone surrogate, nesting past its limit) goes to it, to be
        # answered with its parse error, rather than reaching the tool here.
        decoded = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or not decoded.keys() <= _ENVELOPE_KEYS:
        return None
    request_id, params = decoded.get("id"), decoded.get("params")
    if decoded.get("jsonrpc") != "2.0" or decoded.get("method") != "tools/call":
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    if (
        not isinstance(params, dict)
        or not params.keys() <= _PARAM_KEYS
        or params.get("name") != DISCOVER_TOOL
    ):
        return None
    arguments = params.get("arguments", {})
    if not isinstance(arguments, dict):
        return None
    if version in MODERN_VERSIONS:
        # Only the envelope itself: a progress token or any other metadata takes the SDK's path.
        if not is_plain_modern_call(decoded, request) or not params["_meta"].keys() <= ENVELOPE_META_KEYS:
            return None
    elif "_meta" in params:
        return None
    try:
        validate_tools_call_params(version, params)
    except (ValueError, KeyError):  # pydantic's ValidationError is a ValueError
        return None
    return request_id, arguments


def _mentions(schema: Any, key: str) -> bool:
    """Whether a JSON schema uses `key` anywhere."""
    if isinstance(schema, dict):
        return key in schema or any(_mentions(value, key) for value in schema.values())
    if isinstance(schema, list):
        return any(_mentions(value, key) for value in schema)
    return False
