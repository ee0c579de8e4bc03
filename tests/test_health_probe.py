"""The health prober against real servers on loopback, reached by name through the tests' DNS server."""

from __future__ import annotations

import datetime
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.asyncresolver
import pytest
import trustme
from dnsserver import ThreadedDnsServer
from health_support import probe_loopback
from mcp_targets import (
    CLEAN_TOOLS,
    SERVER_NAME,
    SERVER_VERSION,
    TARGET_IP,
    ClosingListener,
    Recorder,
    UvicornThread,
    delayed,
    html_app,
    legacy_endpoint_app,
    oversized_app,
    raw_json_app,
    redirect_app,
    sdk_sse_app,
    sdk_streamable_app,
    status_app,
    tools_failing_app,
    unauthorized_app,
    write_cert,
)

from mcplookup_mcp.probe.health import (
    PROTOCOL_VERSION,
    ProbeResult,
    ProbeTool,
    clean_untrusted_text,
    tools_fingerprint,
)

HOST = "mcp.example.test"


@pytest.fixture(scope="module")
def stateless_server() -> Iterator[UvicornThread]:
    with UvicornThread(Recorder(sdk_streamable_app(stateless=True))) as server:
        yield server


@pytest.fixture(scope="module")
def stateful_server() -> Iterator[UvicornThread]:
    with UvicornThread(Recorder(sdk_streamable_app(stateless=False))) as server:
        yield server


@pytest.fixture(scope="module")
def sse_server() -> Iterator[UvicornThread]:
    with UvicornThread(sdk_sse_app()) as server:
        yield server


def _assert_sdk_handshake(result: ProbeResult) -> None:
    assert result.protocol_version == PROTOCOL_VERSION
    assert (result.server_name, result.server_version) == (SERVER_NAME, SERVER_VERSION)
    assert dict(result.tools) == CLEAN_TOOLS
    canonical = json.dumps(
        sorted([n, d] for n, d in CLEAN_TOOLS.items()), ensure_ascii=False, separators=(",", ":")
    )
    assert result.tools_fingerprint == hashlib.sha256(canonical.encode()).hexdigest()


# --- healthy ------------------------------------------------------------------------------------


async def test_sdk_streamable_http_stateless_json_is_healthy(
    probe_resolver: dns.asyncresolver.Resolver, stateless_server: UvicornThread
) -> None:
    result = await probe_loopback(probe_resolver, stateless_server.url(), stateless_server.port)
    assert result.status == "healthy", result
    assert result.is_up
    assert (result.error_class, result.error) == (None, None)
    assert result.http_status == 200
    assert result.transport == "streamable-http"
    assert result.tls_valid is None
    assert result.latency_ms is not None and 0 < result.latency_ms < 1500
    assert result.final_url == stateless_server.url()
    _assert_sdk_handshake(result)


async def test_sdk_streamable_http_with_session_and_sse_replies_is_healthy(
    probe_resolver: dns.asyncresolver.Resolver, stateful_server: UvicornThread
) -> None:
    recorder = stateful_server.app
    assert isinstance(recorder, Recorder)
    recorder.requests.clear()
    result = await probe_loopback(probe_resolver, stateful_server.url(), stateful_server.port)
    assert result.status == "healthy", result
    _assert_sdk_handshake(result)
    methods = [method for method, _, _ in recorder.requests]
    assert methods == ["POST", "POST", "POST", "DELETE"]
    first, *later = [headers for _, _, headers in recorder.requests]
    assert first["host"] == f"{HOST}:{stateful_server.port}"
    assert "application/json" in first["accept"] and "text/event-stream" in first["accept"]
    assert "mcp-session-id" not in first
    session_ids = {headers["mcp-session-id"] for headers in later}
    assert len(session_ids) == 1 and session_ids != {""}
    assert {headers["mcp-protocol-version"] for headers in later} == {PROTOCOL_VERSION}


async def test_sdk_legacy_sse_is_healthy(
    probe_resolver: dns.asyncresolver.Resolver, sse_server: UvicornThread
) -> None:
    result = await probe_loopback(probe_resolver, sse_server.url("/sse"), sse_server.port, transport="sse")
    assert result.status == "healthy", result
    assert result.transport == "sse"
    assert result.http_status == 200
    _assert_sdk_handshake(result)


async def test_name_is_resolved_once_per_probe(
    probe_resolver: dns.asyncresolver.Resolver,
    probe_dns_server: ThreadedDnsServer,
    stateful_server: UvicornThread,
) -> None:
    # Four requests, one lookup: later requests go to the checked address, not to a fresh answer.
    before = len(probe_dns_server.queries)
    result = await probe_loopback(probe_resolver, stateful_server.url(), stateful_server.port)
    assert result.status == "healthy"
    assert sorted(probe_dns_server.queries[before:]) == [(HOST, "A"), (HOST, "AAAA")]


async def test_redirect_to_an_allowed_server_is_followed(
    probe_resolver: dns.asyncresolver.Resolver, stateless_server: UvicornThread
) -> None:
    with UvicornThread(redirect_app(stateless_server.url())) as redirector:
        result = await probe_loopback(
            probe_resolver, redirector.url("/old"), redirector.port, stateless_server.port
        )
    assert result.status == "healthy", result
    assert result.final_url == stateless_server.url()


# --- degraded -----------------------------------------------------------------------------------


async def test_slower_than_threshold_is_degraded(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(delayed(sdk_streamable_app(), 0.3)) as server:
        result = await probe_loopback(
            probe_resolver, server.url(), server.port, degraded_ms=150, deadline=5.0
        )
    assert result.status == "degraded", result
    assert result.error_class == "slow"
    assert result.latency_ms is not None and result.latency_ms >= 300
    assert result.is_up
    assert dict(result.tools) == CLEAN_TOOLS


async def test_tools_list_failing_is_degraded(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(tools_failing_app()) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert result.status == "degraded", result
    assert result.error_class == "tools_list_jsonrpc_error"
    assert result.error is not None and "database is down" in result.error
    assert (result.server_name, result.protocol_version) == ("half-broken", "2025-06-18")
    assert result.tools == () and result.tools_fingerprint is None
    assert result.is_up


# --- auth_required ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_required(probe_resolver: dns.asyncresolver.Resolver, status: int) -> None:
    app = unauthorized_app() if status == 401 else status_app(403)
    with UvicornThread(app) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert result.status == "auth_required", result
    assert result.http_status == status
    assert result.is_up
    assert result.latency_ms is not None


# --- unhealthy ----------------------------------------------------------------------------------


async def test_html_page_is_unhealthy(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(html_app()) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert result.status == "unhealthy", result
    assert result.error_class == "not_mcp"
    assert result.http_status == 200
    assert not result.is_up


@pytest.mark.parametrize("status", [404, 500])
async def test_http_error_status_is_unhealthy(
    probe_resolver: dns.asyncresolver.Resolver, status: int
) -> None:
    with UvicornThread(status_app(status)) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert (result.status, result.error_class, result.http_status) == ("unhealthy", "http_status", status)


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        (b"{not json", "invalid_json"),
        (b'{"hello": "world"}', "invalid_jsonrpc"),
        (b'{"jsonrpc": "1.0", "id": 1, "result": {"protocolVersion": "2025-11-25"}}', "invalid_jsonrpc"),
        (b'{"jsonrpc": "2.0", "id": 99, "result": {"protocolVersion": "2025-11-25"}}', "invalid_jsonrpc"),
        (b'{"jsonrpc": "2.0", "id": 1, "result": "ok"}', "invalid_jsonrpc"),
        (b'{"jsonrpc": "2.0", "id": 1, "result": {}}', "invalid_initialize"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad version"}}',
            "jsonrpc_error",
        ),
        (b"", "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ],
    ids=[
        "not-json",
        "not-jsonrpc",
        "wrong-version",
        "wrong-id",
        "result-not-object",
        "no-protocol",
        "error",
        "empty",
        "nested-past-the-parser",
    ],
)
async def test_invalid_jsonrpc_is_unhealthy(
    probe_resolver: dns.asyncresolver.Resolver, body: bytes, error_class: str
) -> None:
    with UvicornThread(raw_json_app(body)) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert (result.status, result.error_class) == ("unhealthy", error_class), result
    assert result.http_status == 200


async def test_oversized_reply_is_cut_off(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(oversized_app(200_000)) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port, max_bytes=64 * 1024)
    assert (result.status, result.error_class) == ("unhealthy", "response_too_large"), result


async def test_redirect_loop_is_unhealthy(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(redirect_app("/mcp")) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port)
    assert (result.status, result.error_class) == ("unhealthy", "too_many_redirects"), result


async def test_legacy_transport_against_a_non_sse_endpoint_is_unhealthy(
    probe_resolver: dns.asyncresolver.Resolver,
) -> None:
    with UvicornThread(html_app()) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port, transport="sse")
    assert (result.status, result.error_class) == ("unhealthy", "not_mcp"), result


async def test_legacy_stream_that_never_answers_is_unhealthy(
    probe_resolver: dns.asyncresolver.Resolver,
) -> None:
    with UvicornThread(legacy_endpoint_app("/messages?session_id=1")) as server:
        result = await probe_loopback(
            probe_resolver, server.url("/sse"), server.port, transport="sse", deadline=1.0
        )
    assert (result.status, result.error_class, result.http_status) == ("unhealthy", "timeout", 200), result


# --- unreachable --------------------------------------------------------------------------------


async def test_beyond_timeout_is_unreachable(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with UvicornThread(delayed(sdk_streamable_app(), 5.0)) as server:
        started = time.monotonic()
        result = await probe_loopback(probe_resolver, server.url(), server.port, deadline=1.0)
        elapsed = time.monotonic() - started
    assert (result.status, result.error_class) == ("unreachable", "timeout"), result
    assert elapsed < 2.5
    assert not result.is_up


async def test_connection_closed_is_unreachable(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with ClosingListener((TARGET_IP,)) as listener:
        result = await probe_loopback(probe_resolver, f"http://{HOST}:{listener.port}/mcp", listener.port)
    assert (result.status, result.error_class) == ("unreachable", "connection_closed"), result
    assert listener.accepts == [TARGET_IP]


async def test_connection_refused_is_unreachable(probe_resolver: dns.asyncresolver.Resolver) -> None:
    with socket.socket() as sock:
        sock.bind((TARGET_IP, 0))
        port = sock.getsockname()[1]
        # Bound but not listening: the kernel refuses connections to this port.
        result = await probe_loopback(probe_resolver, f"http://{HOST}:{port}/mcp", port)
    assert (result.status, result.error_class) == ("unreachable", "connection_refused"), result


async def test_unknown_name_is_unreachable(probe_resolver: dns.asyncresolver.Resolver) -> None:
    result = await probe_loopback(probe_resolver, "http://nowhere.example.test:8080/mcp", 8080)
    assert (result.status, result.error_class) == ("unreachable", "dns_nxdomain"), result
    assert result.tls_valid is None and result.http_status is None


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _tls_server(ca: trustme.CA, directory: Path, *hostnames: str, expired: bool = False) -> UvicornThread:
    not_after = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1) if expired else None
    certfile, keyfile = write_cert(
        ca, directory, "-".join(hostnames) + str(expired), *hostnames, not_after=not_after
    )
    return UvicornThread(sdk_streamable_app(), certfile=certfile, keyfile=keyfile)


async def test_tls_valid_certificate(
    probe_resolver: dns.asyncresolver.Resolver, ca: trustme.CA, ca_bundle: str, tmp_path: Path
) -> None:
    with _tls_server(ca, tmp_path, HOST) as server:
        assert server.url().startswith("https://")
        result = await probe_loopback(probe_resolver, server.url(), server.port, ca_bundle=ca_bundle)
        untrusted = await probe_loopback(probe_resolver, server.url(), server.port)
    assert result.status == "healthy", result
    assert result.tls_valid is True
    _assert_sdk_handshake(result)
    # Without the test CA the same certificate is not trusted (the default bundle is used).
    assert (untrusted.status, untrusted.error_class, untrusted.tls_valid) == (
        "unreachable",
        "tls_untrusted",
        False,
    )


async def test_tls_expired_certificate(
    probe_resolver: dns.asyncresolver.Resolver, ca: trustme.CA, ca_bundle: str, tmp_path: Path
) -> None:
    with _tls_server(ca, tmp_path, HOST, expired=True) as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port, ca_bundle=ca_bundle)
    assert (result.status, result.error_class, result.tls_valid) == ("unreachable", "tls_expired", False), (
        result
    )
    assert result.error is not None and "expired" in result.error


async def test_tls_wrong_host_certificate(
    probe_resolver: dns.asyncresolver.Resolver, ca: trustme.CA, ca_bundle: str, tmp_path: Path
) -> None:
    with _tls_server(ca, tmp_path, "other.example.test") as server:
        result = await probe_loopback(probe_resolver, server.url(), server.port, ca_bundle=ca_bundle)
    assert (result.status, result.error_class, result.tls_valid) == (
        "unreachable",
        "tls_hostname_mismatch",
        False,
    ), result


# --- untrusted text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cap", "expected"),
    [
        ("plain text", 100, "plain text"),
        ("  line one\r\nline two\u2028three\t!  ", 100, "line one\nline two\nthree\t!"),
        ("bell\x07 esc\x1b[2J del\x7f nul\x00 c1\x9b", 100, "bell esc[2J del nul c1"),
        ("bidi \u202eevil\u202c zero\u200bwidth \ufeffbom", 100, "bidi evil zerowidth bom"),
        ("private \ue000use", 100, "private use"),
        ("x" * 50, 10, "x" * 9 + "…"),
        ("abc", 0, ""),
    ],
)
def test_clean_untrusted_text(raw: str, cap: int, expected: str) -> None:
    cleaned = clean_untrusted_text(raw, cap)
    assert cleaned == expected
    assert len(cleaned) <= cap


def test_tools_fingerprint_is_order_independent_and_content_sensitive() -> None:
    a, b = ProbeTool("a", "first"), ProbeTool("b", "second")
    assert tools_fingerprint((a, b)) == tools_fingerprint((b, a))
    assert tools_fingerprint((a, b)) != tools_fingerprint((a, ProbeTool("b", "second!")))
    assert tools_fingerprint(()) == hashlib.sha256(b"[]").hexdigest()
