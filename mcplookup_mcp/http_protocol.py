"""The HTTP protocol uvicorn runs: its own h11 protocol with Nagle's algorithm off on every connection.

`serve --workers N` shares one listening socket made with protocol number 0, and asyncio turns Nagle off
only on connections whose socket says IPPROTO_TCP. A response written in two parts (head, then body) then
waited for the client's delayed ACK: ~44 ms for every request, /health included, with two workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
