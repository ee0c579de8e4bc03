"""/metrics on its own port (METRICS_PORT), away from the public one.

The workers of one `mcplookup serve --workers N` listen on the port together with SO_REUSEPORT, so the
kernel hands each scrape to one of them; that one refreshes the database gauges from its own pool and
answers the figures of every process (metrics.exposition pools them). No other process may share it:
two unrelated servers on one port would each answer some scrapes, and each one's figures would vanish
behind the other's. So the serve command first checks that nothing listens there (`check_free`), and
with workers holds the port for them (`hold_for_workers`): a socket bound with SO_REUSEPORT alone, which
its workers may join and another process's check cannot pass. A single process binds it alone.
Only `GET /metrics` is served: a scraper's request, read up to a few kilobytes, answered and closed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from mcplookup_mcp.core.metrics import exposition

log = structlog.get_logger("mcplookup.metrics")

MAX_REQUEST_HEAD = 8192
READ_TIMEOUT = 5.0


def _response(
    status: str, body: bytes, content_type: str = "text/plain; charset=utf-8", extra: str = ""
) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    )
    return head.encode() + body


class MetricsPortInUse(Exception):
    """The metrics port is held by another process."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"METRICS_PORT={port}: another process already listens on {host}:{port}, and two servers on "
            "one metrics port would each hide the other's figures; stop it, or give each server on this "
            "host a METRICS_PORT of its own (and scrape each)"
        )


def _socket(host: str, port: int) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def check_free(host: str, port: int) -> None:
    """Raise MetricsPortInUse when another process listens on (or holds) host:port."""
    with _socket(host, port) as probe:
        # SO_REUSEADDR: connections of an earlier run still in TIME_WAIT do not count; without
        # SO_REUSEPORT the bind fails on any listener, and on a port held for another serve's workers.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise MetricsPortInUse(host, port) from None


def hold_for_workers(host: str, port: int) -> socket.socket:
    """A bound, never listening socket that keeps host:port for this process's workers (which bind it
    with SO_REUSEPORT) until it is closed; another process's check_free fails on it."""
    check_free(host, port)
    guard = _socket(host, port)
    guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        guard.bind((host, port))
    except OSError:
        guard.close()
        raise MetricsPortInUse(host, port) from None
    return guard


async def serve_metrics(
    host: str, port: int, refresh: Callable[[], Awaitable[None]], *, shared: bool = False
) -> asyncio.Server:
    """Start answering GET /metrics on host:port; the caller closes the returned server. `shared`: a
    worker of a serve that holds the port (hold_for_workers), listening beside its siblings."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, path, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
            if path.split("?", 1)[0] != "/metrics":
                writer.write(_response("404 Not Found", b"only /metrics is served on this port\n"))
            elif method not in ("GET", "HEAD"):
                writer.write(
                    _response("405 Method Not Allowed", b"GET /metrics\n", extra="Allow: GET, HEAD\r\n")
                )
            else:
                await refresh()
                body = exposition()
                reply = _response("200 OK", body, CONTENT_TYPE_LATEST)
                writer.write(reply if method == "GET" else reply[: len(reply) - len(body)])
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    sock = _socket(host, port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(100)
    except OSError:
        sock.close()
        raise MetricsPortInUse(host, port) from None
    server = await asyncio.start_server(answer, sock=sock, limit=MAX_REQUEST_HEAD)
    log.info("metrics served on their own port", host=host, port=port)
    return server
