"""The health prober against hostile servers on loopback: dripped headers and bodies, an event stream that
never answers, a gigabyte reply, redirects to private addresses, and a healthy probe running beside them.
Each probe ends within its own timeout with a clear status, holds a bounded amount of memory, and delays
no other probe."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import dns.asyncresolver
import pytest
from health_support import probe_loopback
from mcp_targets import TARGET_IP, RawTarget, UvicornThread, redirect_app, sdk_streamable_app

from mcplookup_mcp.probe.health import ProbeResult, probe
from mcplookup_mcp.probe.ssrf import ProbePolicy

GIB = 1024**3
DEADLINE = 2.0
# A probe may overrun its deadline by the time it takes to close its connections, no more.
SLACK = 0.75


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def drip_headers() -> Handler:
    """Slowloris: the status line, then headers one byte per second, never ending."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        while True:
            await writer.drain()
            await asyncio.sleep(1.0)
            writer.write(b"a")

    return handler


def drip_body() -> Handler:
    """Complete headers promising a JSON body, then the body one byte per second."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for byte in b'{"jsonrpc": "2.0", "id": 1, "result": {' + b" " * 100_000:
            await writer.drain()
            writer.write(bytes([byte]))
            await asyncio.sleep(1.0)

    return handler


def endless_stream(event: bytes, pause: float) -> Handler:
    """200 text/event-stream on the streamable-HTTP path that sends `event` every `pause` s and never the
    initialize result."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while True:
            writer.write(_chunk(event))
            await writer.drain()
            await asyncio.sleep(pause)

    return handler


def gigabyte(target: list[RawTarget], declared: bool) -> Handler:
    """A 1 GiB JSON reply as fast as the connection takes it, chunked or with its length declared."""
    block = b"x" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = f"Content-Length: {GIB}" if declared else "Transfer-Encoding: chunked"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
        writer.write(b'{"jsonrpc": "2.0", "id": 1, "result": {"p": "' if declared else _chunk(b'{"p": "'))
        for _ in range(GIB // len(block)):
            writer.write(block if declared else _chunk(block))
            await writer.drain()
            target[0].sent += len(block)

    return handler


async def _timed(run: Awaitable[ProbeResult]) -> tuple[ProbeResult, float]:
    started = time.monotonic()
    result = await run
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (drip_headers(), "unreachable"),
        (drip_body(), "unhealthy"),
        (endless_stream(b": keep-alive\n\n", 0.2), "unhealthy"),
        (
            endless_stream(b'data: {"jsonrpc": "2.0", "method": "notifications/progress"}\n\n', 0.2),
            "unhealthy",
        ),
    ],
    ids=["slowloris-headers", "slowloris-body", "endless-sse-comments", "endless-sse-notifications"],
)
async def test_a_server_that_never_finishes_times_out(
    probe_resolver: dns.asyncresolver.Resolver, handler: Handler, status: str
) -> None:
    with RawTarget(handler) as target:
        result, elapsed = await _timed(
            probe_loopback(probe_resolver, target.url(), target.port, deadline=DEADLINE)
        )
    assert (result.status, result.error_class) == (status, "timeout"), result
    assert result.error and ("within 2 s" in result.error or "timed out" in result.error), result.error
    assert DEADLINE - 0.1 <= elapsed < DEADLINE + SLACK
    assert not result.is_up
    # An HTTP answer had begun: the status is known once the headers are complete.
    assert result.http_status == (None if status == "unreachable" else 200)


async def test_an_event_stream_flood_ends_at_the_size_cap(probe_resolver: dns.asyncresolver.Resolver) -> None:
    event = b'data: {"jsonrpc": "2.0", "method": "notifications/progress"}\n\n' * 1000
    with RawTarget(endless_stream(event, 0)) as target:
        result, elapsed = await _timed(
            probe_loopback(probe_resolver, target.url(), target.port, deadline=10.0, max_bytes=256 * 1024)
        )
    assert (result.status, result.error_class) == ("unhealthy", "response_too_large"), result
    assert elapsed < 2.0


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_a_gigabyte_reply_is_streamed_and_cut_at_the_cap(
    probe_resolver: dns.asyncresolver.Resolver, declared: bool
) -> None:
    cap = 1024 * 1024
    holder: list[RawTarget] = []
    target = RawTarget(gigabyte(holder, declared))
    holder.append(target)
    with target:
        tracemalloc.start()
        try:
            result, elapsed = await _timed(
                probe_loopback(probe_resolver, target.url(), target.port, deadline=10.0, max_bytes=cap)
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (result.status, result.error_class) == ("unhealthy", "response_too_large"), result
    assert elapsed < 3.0
    # Read up to the cap and dropped: memory stays near the cap, and the server could send only what the
    # socket buffers held beyond it before the probe hung up.
    assert peak < 16 * cap, peak
    assert target.sent < 64 * cap, target.sent
    if declared:
        assert result.error is not None and str(GIB) in result.error


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.1/mcp", "RFC 1918"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/mcp", "loopback"),
        ("http://[::ffff:192.168.0.1]/mcp", "IPv4-mapped"),
        ("http://100.64.0.1/mcp", "carrier-grade NAT"),
    ],
)
async def test_redirect_to_a_private_address_is_blocked(
    probe_resolver: dns.asyncresolver.Resolver, location: str, reason: str
) -> None:
    """The production guard (no allowlist beyond the redirecting server itself): the redirect is refused
    before any connection, so even an address nothing answers on ends the probe at once."""
    with UvicornThread(redirect_app(location)) as redirector:
        policy = ProbePolicy(
            allow_cidrs=(ipaddress.ip_network(f"{TARGET_IP}/32"),),
            allowed_ports=frozenset({redirector.port, 80}),
            allow_plain_http=True,
        )
        result, elapsed = await _timed(
            probe(
                redirector.url(),
                transport="streamable-http",
                resolver=probe_resolver,
                policy=policy,
                timeout=5.0,
            )
        )
    assert (result.status, result.error_class) == ("blocked", "ssrf_blocked"), result
    assert result.error is not None and reason in result.error
    assert elapsed < 1.0


async def test_hostile_probes_delay_no_healthy_one(probe_resolver: dns.asyncresolver.Resolver) -> None:
    """Probes share one event loop: a healthy one beside four hostile ones takes its own time."""
    holder: list[RawTarget] = []
    flood = RawTarget(gigabyte(holder, declared=False))
    holder.append(flood)
    hostile = [
        RawTarget(drip_headers()),
        RawTarget(drip_body()),
        RawTarget(endless_stream(b": keep-alive\n\n", 0.05)),
        flood,
    ]
    with UvicornThread(sdk_streamable_app()) as healthy:
        for target in hostile:
            target.start()
        try:
            alone, alone_s = await _timed(probe_loopback(probe_resolver, healthy.url(), healthy.port))
            assert alone.status == "healthy", alone

            async def beside() -> tuple[ProbeResult, float]:
                await asyncio.sleep(0.3)  # the hostile probes are under way
                return await _timed(probe_loopback(probe_resolver, healthy.url(), healthy.port))

            results = await asyncio.gather(
                *(
                    _timed(
                        probe_loopback(
                            probe_resolver, t.url(), t.port, deadline=3.0, max_bytes=4 * 1024 * 1024
                        )
                    )
                    for t in hostile
                ),
                beside(),
            )
        finally:
            for target in hostile:
                target.stop()
    (concurrent, concurrent_s) = results[-1]
    assert concurrent.status == "healthy", concurrent
    assert concurrent_s < alone_s + 0.5, (alone_s, concurrent_s)
    assert [r.error_class for r, _ in results[:-1]] == ["timeout", "timeout", "timeout", "response_too_large"]
    for _, elapsed in results[:3]:
        assert 2.9 <= elapsed < 3.0 + SLACK
