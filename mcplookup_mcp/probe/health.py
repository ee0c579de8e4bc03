"""Health prober: a real MCP handshake against a listed server's remote endpoint.

Transports
- ``streamable-http``: POST ``initialize`` (``Accept: application/json, text/event-stream``), reply as
  JSON or as an SSE stream; then ``notifications/initialized`` and ``tools/list`` carrying the
  ``Mcp-Session-Id`` (when the server issued one) and ``MCP-Protocol-Version`` headers; the session is
  ended with a best-effort DELETE.
- ``sse`` (legacy HTTP+SSE): GET the event stream, read the ``endpoint`` event, POST the same three
  messages to it and read the replies from the stream (or from the POST body, which some servers use).

Every URL, including each redirect target (at most ``ProbePolicy.max_redirects``) and the legacy
endpoint, passes the SSRF guard (`mcplookup_mcp.probe.ssrf`); connections go to the checked address with the
hostname in ``Host``, TLS SNI and certificate verification. No proxy from the environment is used.

Classification (first rule that applies)
- ``blocked``: the SSRF guard refused the URL or a redirect/endpoint target; nothing was sent there.
- ``unreachable``: DNS failure, connection refused/failed, TLS failure (``tls_valid`` False),
  connection closed without an HTTP answer, or no HTTP answer within ``timeout`` seconds (the whole
  probe, DNS included, is bounded by ``timeout``).
- ``auth_required``: HTTP 401 or 403 on the handshake. The server is alive and counts as up.
- ``unhealthy``: an HTTP answer that is not MCP: other 4xx/5xx status, a content type other than JSON or
  SSE, a body that is not JSON or has no JSON-RPC 2.0 response to our request, a JSON-RPC error to
  ``initialize``, an ``initialize`` result without ``protocolVersion``, more than ``max_bytes`` in one
  reply or stream, too many redirects, or an HTTP answer followed by no ``initialize`` result within
  ``timeout`` (stalled or closed stream).
- ``degraded``: the handshake succeeded but ``initialize`` took longer than ``degraded_ms`` (connection
  setup and TLS included, DNS excluded), or ``notifications/initialized`` / ``tools/list`` failed or
  timed out; also HTTP 429 on the handshake (alive but refusing us for now).
- ``healthy``: all of the handshake succeeded within ``degraded_ms``.

Defaults: ``timeout`` 10 s, ``degraded_ms`` 2000 ms, ``max_bytes`` 1 MiB per reply or stream, 3 redirects;
at most 256 tools from 5 ``tools/list`` pages, names capped at 128 characters, descriptions at 1024.

`latency_ms` is the ``initialize`` round trip (for ``sse``: from opening the stream to the result);
when the handshake stops at an HTTP answer (401, an HTML page, ...) it is the time to that answer.
Text from the probed server (tool names and descriptions, server name, error messages) is untrusted:
control and format characters are removed and lengths capped (`clean_untrusted_text`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import ssl
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import certifi
import dns.asyncresolver
import httpx

from mcplookup_mcp import __version__
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS, UP_STATUSES
from mcplookup_mcp.probe.dns_resolver import DnsLookupError, DnsTimeout, NoRecord, NoSuchDomain
from mcplookup_mcp.probe.ssrf import BlockedTarget, CheckedTarget, ProbePolicy, check_target

Status = Literal["healthy", "degraded", "auth_required", "unhealthy", "unreachable", "blocked"]
Transport = Literal["streamable-http", "sse"]

PROTOCOL_VERSION = "2025-11-25"
DEFAULT_TIMEOUT = 10.0
DEFAULT_DEGRADED_MS = 2000.0
DEFAULT_MAX_BYTES = 1024 * 1024
TOOL_NAME_CAP = 128
TOOL_DESCRIPTION_CAP = 1024
SERVER_TEXT_CAP = 128
ERROR_TEXT_CAP = 300
MAX_TOOLS = 256
MAX_TOOL_PAGES = 5
USER_AGENT = f"mcplookup-prober/{__version__}"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_INIT_ID, _TOOLS_ID = 1, 2


class ProbeTool(NamedTuple):
    name: str
    description: str


@dataclass(frozen=True)
class ProbeResult:
    status: Status
    transport: Transport
    latency_ms: float | None = None
    http_status: int | None = None
    protocol_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    error_class: str | None = None
    error: str | None = None
    tls_valid: bool | None = None
    tools: tuple[ProbeTool, ...] = ()
    tools_fingerprint: str | None = None
    final_url: str | None = None

    @property
    def is_up(self) -> bool:
        return self.status in UP_STATUSES


def clean_untrusted_text(text: str, cap: int) -> str:
    """Drop control/format/private-use characters (tab and newline kept), trim, cap at `cap` chars."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    kept = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co")
    ).strip()
    if len(kept) <= cap:
        return kept
    return kept[: max(cap - 1, 0)].rstrip() + "…" if cap > 0 else ""


def _clean_line(text: str, cap: int) -> str:
    return " ".join(clean_untrusted_text(text, cap * 2).split())[:cap]


def tools_fingerprint(tools: tuple[ProbeTool, ...]) -> str:
    """SHA-256 of the canonical JSON of the sorted (name, description) pairs."""
    canonical = json.dumps(
        sorted([t.name, t.description] for t in tools), ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Fail(Exception):
    def __init__(self, status: Status, error_class: str, message: str) -> None:
        self.status = status
        self.error_class = error_class
        super().__init__(message)


@dataclass
class _State:
    transport: Transport
    http_status: int | None = None
    latency_ms: float | None = None
    protocol_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    initialized: bool = False
    phase: str = "initialize"
    tools: tuple[ProbeTool, ...] = ()
    fingerprint: str | None = None
    final_url: str | None = None
    tls_valid: bool | None = None
    status: Status = "healthy"
    error_class: str | None = None
    error: str | None = None

    def fail(self, status: Status, error_class: str, message: str) -> None:
        if status == "unreachable" and self.http_status is not None:
            # It answered HTTP, then stalled or hung up before a handshake: reachable, but not MCP.
            status = "unhealthy"
        if self.initialized and status != "blocked":
            # The server already answered initialize: a later failure is partial service, not an outage.
            status, error_class, message = (
                "degraded",
                f"{self.phase}_{error_class}",
                f"{self.phase}: {message}",
            )
        self.status, self.error_class = status, error_class
        self.error = clean_untrusted_text(message, ERROR_TEXT_CAP) or error_class

    def result(self) -> ProbeResult:
        return ProbeResult(
            status=self.status,
            transport=self.transport,
            latency_ms=self.latency_ms,
            http_status=self.http_status,
            protocol_version=self.protocol_version,
            server_name=self.server_name,
            server_version=self.server_version,
            error_class=self.error_class,
            error=self.error,
            tls_valid=self.tls_valid,
            tools=self.tools,
            tools_fingerprint=self.fingerprint,
            final_url=self.final_url,
        )


@functools.lru_cache(maxsize=8)
def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate verification for every fetch of the probe layer: certifi's roots, or the given bundle."""
    return ssl.create_default_context(cafile=ca_bundle or certifi.where())


@dataclass
class _Net:
    """HTTP through the SSRF guard: each request goes to the address checked for its URL."""

    resolver: dns.asyncresolver.Resolver
    policy: ProbePolicy
    timeout: float
    ssl_context: ssl.SSLContext
    max_bytes: int
    state: _State
    stack: AsyncExitStack
    _targets: dict[tuple[str, str, str, int], CheckedTarget] = field(default_factory=dict, init=False)
    _clients: dict[tuple[str, str, str, int], httpx.AsyncClient] = field(default_factory=dict, init=False)

    async def _target(self, url: str) -> CheckedTarget:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise BlockedTarget(f"invalid URL: {exc}") from None
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        key = (parsed.scheme, parsed.userinfo.decode("ascii"), host, parsed.port or 0)
        # One lookup per origin and probe: a second answer could differ (rebinding) and is never needed.
        cached = self._targets.get(key)
        if cached is None:
            cached = self._targets[key] = await check_target(url, self.resolver, self.policy)
        return dataclasses.replace(cached, url=str(parsed))

    async def _client(self, target: CheckedTarget) -> httpx.AsyncClient:
        # Pools are keyed by address; a separate client per hostname keeps a TLS session verified for one
        # name from being reused for another name on the same address.
        key = (target.scheme, target.host, str(target.ip), target.port)
        if key not in self._clients:
            client = httpx.AsyncClient(
                verify=self.ssl_context,
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(self.timeout),
                headers={"User-Agent": USER_AGENT},
            )
            self._clients[key] = await self.stack.enter_async_context(client)
        return self._clients[key]

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[httpx.Response, str]:
        """Send with redirects followed by hand; the response is open (streamed) and must be closed."""
        for _ in range(self.policy.max_redirects + 1):
            target = await self._target(url)
            client = await self._client(target)
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            request = client.build_request(
                method,
                target.connect_url,
                headers={**headers, "Host": target.host_header},
                content=body,
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            if target.scheme == "https":
                self.state.tls_valid = True
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response, url
            await response.aclose()
            # The probe replays the request: it asks whether MCP answers where the server points.
            url = _join(url, location)
        raise _Fail("unhealthy", "too_many_redirects", f"more than {self.policy.max_redirects} redirects")


def _join(base: str, reference: str) -> str:
    try:
        return str(httpx.URL(base).join(reference))
    except httpx.InvalidURL as exc:
        raise BlockedTarget(f"invalid URL {reference[:100]!r}: {exc}") from None


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _Fail("unhealthy", "response_too_large", f"response of {declared} bytes exceeds {max_bytes}")
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > max_bytes:
            raise _Fail("unhealthy", "response_too_large", f"response exceeds {max_bytes} bytes")
    return bytes(buf)


class _SseReader:
    """Server-sent events from a streamed response, at most `max_bytes` in total."""

    def __init__(self, response: httpx.Response, max_bytes: int) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._buf = b""
        self._total = 0
        self._max = max_bytes

    async def _line(self) -> str | None:
        while b"\n" not in self._buf:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            self._total += len(chunk)
            if self._total > self._max:
                raise _Fail("unhealthy", "response_too_large", f"event stream exceeds {self._max} bytes")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", errors="replace")

    async def next_event(self) -> tuple[str, str] | None:
        event, data = "message", list[str]()
        while True:
            line = await self._line()
            if line is None:
                return None
            if line == "":
                if data:
                    return event, "\n".join(data)
                event = "message"
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def _json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # a hostile server's reply is just bad
        raise _Fail("unhealthy", "invalid_json", "reply is not valid JSON") from None


def _find_response(message: Any, request_id: int) -> dict[str, Any] | None:
    candidates = message if isinstance(message, list) else [message]
    for item in candidates:
        if (
            isinstance(item, dict)
            and item.get("jsonrpc") == "2.0"
            and type(item.get("id")) is int
            and item.get("id") == request_id
            and ("result" in item or "error" in item)
        ):
            return item
    return None


def _result(response: dict[str, Any], what: str) -> dict[str, Any]:
    error = response.get("error")
    if error is not None:
        detail = error.get("message", "") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        raise _Fail("unhealthy", "jsonrpc_error", f"{what} failed with JSON-RPC error {code}: {detail}")
    result = response.get("result")
    if not isinstance(result, dict):
        raise _Fail("unhealthy", "invalid_jsonrpc", f"{what} result is not an object")
    return result


def _check_status(response: httpx.Response, what: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    if code in (401, 403):
        raise _Fail("auth_required", "auth_required", f"{what}: HTTP {code}, the server requires credentials")
    if code == 429:
        raise _Fail("degraded", "rate_limited", f"{what}: HTTP 429, the server is rate limiting the probe")
    raise _Fail("unhealthy", "http_status", f"{what}: HTTP {code}")


def _content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


async def _reply(response: httpx.Response, request_id: int, max_bytes: int, what: str) -> dict[str, Any]:
    """The JSON-RPC response to `request_id` from a streamable HTTP reply (JSON or SSE)."""
    kind = _content_type(response)
    if kind == "application/json":
        found = _find_response(_json(await _read_capped(response, max_bytes)), request_id)
        if found is None:
            raise _Fail("unhealthy", "invalid_jsonrpc", f"{what}: reply is not a JSON-RPC 2.0 response")
        return found
    if kind == "text/event-stream":
        return await _await_on_stream(_SseReader(response, max_bytes), request_id, what)
    shown = kind or "none"
    raise _Fail("unhealthy", "not_mcp", f"{what}: content type {shown!r} is neither JSON nor an event stream")


async def _await_on_stream(reader: _SseReader, request_id: int, what: str) -> dict[str, Any]:
    while True:
        event = await reader.next_event()
        if event is None:
            raise _Fail("unhealthy", "invalid_jsonrpc", f"{what}: event stream ended without a response")
        kind, data = event
        if kind != "message":
            continue
        found = _find_response(_json(data), request_id)
        if found is not None:
            return found


def _message(method: str, params: dict[str, Any] | None, request_id: int | None = None) -> bytes:
    payload: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        payload["id"] = request_id
    if params is not None:
        payload["params"] = params
    return json.dumps(payload).encode()


_INIT_PARAMS: dict[str, Any] = {
    "protocolVersion": PROTOCOL_VERSION,
    "capabilities": {},
    "clientInfo": {"name": "mcplookup-prober", "version": __version__},
}
_INITIALIZE = _message("initialize", _INIT_PARAMS, _INIT_ID)
_INITIALIZED = _message("notifications/initialized", None)


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _accept_initialize(result: dict[str, Any], state: _State, started: float) -> bool:
    """Record the initialize result; return whether the server offers tools."""
    version = result.get("protocolVersion")
    if not isinstance(version, str) or not version:
        raise _Fail("unhealthy", "invalid_initialize", "initialize result has no protocolVersion")
    state.latency_ms = _elapsed_ms(started)
    state.protocol_version = _clean_line(version, 32)
    info = result.get("serverInfo")
    if isinstance(info, dict):
        name, version_text = info.get("name"), info.get("version")
        state.server_name = _clean_line(name, SERVER_TEXT_CAP) if isinstance(name, str) else None
        state.server_version = (
            _clean_line(version_text, SERVER_TEXT_CAP) if isinstance(version_text, str) else None
        )
    state.initialized = True
    capabilities = result.get("capabilities")
    return isinstance(capabilities, dict) and capabilities.get("tools") is not None


def _tools_page(result: dict[str, Any]) -> tuple[list[ProbeTool], str | None]:
    raw = result.get("tools")
    if not isinstance(raw, list):
        raise _Fail("unhealthy", "invalid_result", "result has no tools array")
    tools: list[ProbeTool] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        description = item.get("description")
        text = clean_untrusted_text(description, TOOL_DESCRIPTION_CAP) if isinstance(description, str) else ""
        tools.append(ProbeTool(_clean_line(item["name"], TOOL_NAME_CAP), text))
    cursor = result.get("nextCursor")
    return tools, cursor if isinstance(cursor, str) and cursor else None


_Call = Callable[[str, dict[str, Any] | None], Awaitable[dict[str, Any]]]


async def _collect_tools(call: _Call, state: _State) -> None:
    state.phase = "tools_list"
    tools: list[ProbeTool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        response = await call("tools/list", {"cursor": cursor} if cursor else None)
        page, cursor = _tools_page(_result(response, "tools/list"))
        tools.extend(page)
        if cursor is None or len(tools) >= MAX_TOOLS:
            break
    state.tools = tuple(tools[:MAX_TOOLS])
    state.fingerprint = tools_fingerprint(state.tools)


async def _streamable_http(net: _Net, url: str, state: _State) -> None:
    started = time.monotonic()
    response, url = await net.send("POST", url, _JSON_HEADERS, _INITIALIZE)
    state.final_url = url
    state.latency_ms = _elapsed_ms(started)
    try:
        state.http_status = response.status_code
        _check_status(response, "initialize")
        init = _result(await _reply(response, _INIT_ID, net.max_bytes, "initialize"), "initialize")
    finally:
        await response.aclose()
    has_tools = _accept_initialize(init, state, started)
    headers = dict(_JSON_HEADERS)
    headers["MCP-Protocol-Version"] = state.protocol_version or PROTOCOL_VERSION
    session = response.headers.get("mcp-session-id", "")
    # The spec allows only visible ASCII in a session id; anything else is not echoed back.
    if session and len(session) <= 256 and all("!" <= ch <= "~" for ch in session):
        headers["Mcp-Session-Id"] = session
    try:
        await _notify_initialized(net, url, headers, state)
        if has_tools:
            next_id = iter(range(_TOOLS_ID, _TOOLS_ID + MAX_TOOL_PAGES))

            async def call(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
                request_id = next(next_id)
                reply, _ = await net.send("POST", url, headers, _message(method, params, request_id))
                try:
                    _check_status(reply, method)
                    return await _reply(reply, request_id, net.max_bytes, method)
                finally:
                    await reply.aclose()

            await _collect_tools(call, state)
        else:
            state.fingerprint = tools_fingerprint(())
    finally:
        task = asyncio.current_task()
        # Skipped when the probe's deadline is cancelling us: the DELETE must not outlive the deadline.
        if "Mcp-Session-Id" in headers and (task is None or not task.cancelling()):
            await _end_session(net, url, headers)


async def _notify_initialized(net: _Net, url: str, headers: dict[str, str], state: _State) -> None:
    state.phase = "initialized"
    response, _ = await net.send("POST", url, headers, _INITIALIZED)
    try:
        _check_status(response, "notifications/initialized")
        await _read_capped(response, net.max_bytes)
    finally:
        await response.aclose()


async def _end_session(net: _Net, url: str, headers: dict[str, str]) -> None:
    # Courtesy to the server; its answer (405 is allowed) and any failure do not change the result.
    try:
        response, _ = await net.send("DELETE", url, {k: v for k, v in headers.items() if k != "Content-Type"})
        await response.aclose()
    except (httpx.HTTPError, _Fail, BlockedTarget, DnsLookupError):
        pass


async def _legacy_sse(net: _Net, url: str, state: _State) -> None:
    started = time.monotonic()
    stream, sse_url = await net.send("GET", url, {"Accept": "text/event-stream", "Cache-Control": "no-cache"})
    state.final_url = sse_url
    state.latency_ms = _elapsed_ms(started)
    try:
        state.http_status = stream.status_code
        _check_status(stream, "event stream")
        if _content_type(stream) != "text/event-stream":
            shown = _content_type(stream) or "none"
            raise _Fail("unhealthy", "not_mcp", f"GET returned {shown!r}, not an event stream")
        reader = _SseReader(stream, net.max_bytes)
        endpoint = await _endpoint_event(reader)
        post_url = _join(sse_url, endpoint)
        next_id = iter(range(_INIT_ID, _TOOLS_ID + MAX_TOOL_PAGES))

        async def call(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
            request_id = next(next_id)
            response, _ = await net.send(
                "POST", post_url, _JSON_HEADERS, _message(method, params, request_id)
            )
            try:
                if not state.initialized and not 200 <= response.status_code < 300:
                    state.http_status = response.status_code
                _check_status(response, method)
                body = await _read_capped(response, net.max_bytes)
            finally:
                await response.aclose()
            # Legacy servers answer on the stream; a few also put the response in the POST body.
            if _content_type(response) == "application/json" and body.strip():
                found = _find_response(_json(body), request_id)
                if found is not None:
                    return found
            return await _await_on_stream(reader, request_id, method)

        init = _result(await call("initialize", _INIT_PARAMS), "initialize")
        has_tools = _accept_initialize(init, state, started)
        await _notify_initialized(net, post_url, _JSON_HEADERS, state)
        if has_tools:
            await _collect_tools(call, state)
        else:
            state.fingerprint = tools_fingerprint(())
    finally:
        await stream.aclose()


async def _endpoint_event(reader: _SseReader) -> str:
    while True:
        event = await reader.next_event()
        if event is None:
            raise _Fail("unhealthy", "not_mcp", "event stream ended without an endpoint event")
        kind, data = event
        if kind == "endpoint" and data.strip():
            return data.strip()


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# OpenSSL X509_V_ERR_* codes.
_TLS_VERIFY_CODES = {
    9: "tls_not_yet_valid",
    10: "tls_expired",
    62: "tls_hostname_mismatch",
    2: "tls_untrusted",
    18: "tls_untrusted",
    19: "tls_untrusted",
    20: "tls_untrusted",
    21: "tls_untrusted",
}


def _classify_transport_error(exc: httpx.TransportError, state: _State) -> None:
    chain = _exception_chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            state.tls_valid = False
            error_class = _TLS_VERIFY_CODES.get(item.verify_code, "tls_invalid")
            state.fail("unreachable", error_class, f"TLS certificate rejected: {item.verify_message}")
            return
        if isinstance(item, ssl.SSLError):
            state.tls_valid = False
            state.fail("unreachable", "tls_handshake", f"TLS handshake failed: {item.reason or item}")
            return
    if isinstance(exc, httpx.TimeoutException):
        state.fail("unreachable", "timeout", "timed out")
    elif isinstance(exc, httpx.ConnectError):
        refused = any(isinstance(item, ConnectionRefusedError) for item in chain)
        state.fail("unreachable", "connection_refused" if refused else "connect_failed", f"connect: {exc}")
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        state.fail("unreachable", "connection_closed", f"connection closed: {exc or type(exc).__name__}")
    else:
        state.fail("unreachable", "transport_error", f"{type(exc).__name__}: {exc}")


_DNS_CLASSES: dict[type[DnsLookupError], str] = {
    NoSuchDomain: "dns_nxdomain",
    NoRecord: "dns_no_address",
    DnsTimeout: "dns_timeout",
}


async def probe(
    url: str,
    *,
    transport: Transport,
    resolver: dns.asyncresolver.Resolver,
    policy: ProbePolicy,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - one deadline for the whole probe, DNS included
    degraded_ms: float = DEFAULT_DEGRADED_MS,
    ca_bundle: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ProbeResult:
    """Probe one remote endpoint; never raises for anything the remote side does."""
    if transport not in REMOTE_TRANSPORTS:
        raise ValueError(f"cannot probe transport {transport!r}: only streamable-http and sse are remote")
    state = _State(transport=transport)
    try:
        async with asyncio.timeout(timeout), AsyncExitStack() as stack:
            net = _Net(resolver, policy, timeout, ssl_context(ca_bundle), max_bytes, state, stack)
            handshake = _streamable_http if transport == "streamable-http" else _legacy_sse
            await handshake(net, url, state)
    except _Fail as exc:
        state.fail(exc.status, exc.error_class, str(exc))
    except BlockedTarget as exc:
        # A refused redirect or endpoint means the server tried to send us somewhere forbidden.
        state.status, state.error_class = "blocked", "ssrf_blocked"
        state.error = clean_untrusted_text(exc.reason, ERROR_TEXT_CAP)
    except DnsLookupError as exc:
        state.fail("unreachable", _DNS_CLASSES.get(type(exc), "dns_failure"), str(exc))
    except TimeoutError:
        state.fail("unreachable", "timeout", f"no complete answer within {timeout:g} s")
    except httpx.TransportError as exc:
        _classify_transport_error(exc, state)
    except httpx.HTTPError as exc:
        state.fail("unhealthy", "http_error", f"{type(exc).__name__}: {exc}")
    if state.status == "healthy" and state.latency_ms is not None and state.latency_ms > degraded_ms:
        state.status, state.error_class = "degraded", "slow"
        state.error = f"initialize took {state.latency_ms:g} ms (threshold {degraded_ms:g} ms)"
    return state.result()
