"""/metrics on its own port (METRICS_PORT), away from the public one.

Every server process listens on the port with SO_REUSEPORT, so with `--workers N` the kernel hands each
scrape to one of them; that one refreshes the database gauges from its own pool and answers the figures
of every process (metrics.exposition pools them). Only `GET /metrics` is served: a scraper's request,
read up to a few kilobytes, answered and closed.
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


async def serve_metrics(host: str, port: int, refresh: Callable[[], Awaitable[None]]) -> asyncio.Server:
    """Start answering GET /metrics on host:port; the caller closes the returned server."""

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

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    server = await asyncio.start_server(answer, sock=sock, limit=MAX_REQUEST_HEAD)
    log.info("metrics served on their own port", host=host, port=port)
    return server
