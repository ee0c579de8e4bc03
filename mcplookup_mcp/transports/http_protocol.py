"""How uvicorn serves: uvloop's event loop, httptools' parser, and Nagle's algorithm off on every connection.

uvloop and httptools are C implementations of what asyncio and h11 do in Python. With 16 clients on
cached answers at 100k servers they took REST from about 2,000 to 2,750 req/s and the p95 from 12-14 to
8.4 ms (wrk, 10 s runs), and MCP from 1,100-1,500 to 1,600-1,900 req/s.

`serve --workers N` shares one listening socket made with protocol number 0, and asyncio turns Nagle off
only on connections whose socket says IPPROTO_TCP. A response written in two parts (head, then body) then
waited for the client's delayed ACK: ~44 ms for every request, /health included, with two workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """The connection's transport, with the writes made in one turn of the event loop sent as one.

    uvicorn writes a response's head and its body apart; with Nagle off each write was a system call
    and a packet of its own, and the socket writes were a third of a cached answer's time (py-spy,
    docs/discovery.md). The head and body of an answer are written in the same turn, so they now leave
    together at the end of it. Everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # uvloop's transports are not asyncio.Transport subclasses: any transport that writes is wrapped.
        if hasattr(transport, "write"):
            transport = CoalescingTransport(transport)  # type: ignore[arg-type,assignment]
        super().connection_made(transport)  # type: ignore[arg-type]


def uvicorn_options() -> dict[str, Any]:
    """What every server of ours runs on: `serve`, its workers, and the tests' live servers."""
    return {"http": NoDelayHttpToolsProtocol, "loop": "uvloop"}
