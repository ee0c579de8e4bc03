"""Nagle's algorithm is off on every connection the server accepts, even on a listening socket that
does not say it is TCP (as the one `serve --workers N` shares)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from mcplookup_mcp.transports.http_protocol import NoDelayHttpToolsProtocol


async def _nodelay_on_accepted(protocol_class: type[HttpToolsProtocol]) -> int:
    config = uvicorn.Config(app=lambda scope, receive, send: None, log_level="warning")
    config.load()
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Observed(protocol_class):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    # Made the way uvicorn makes the socket its worker processes share: protocol number 0.
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    assert listening.proto == 0
    server = await asyncio.get_running_loop().create_server(
        lambda: Observed(config=config, server_state=ServerState(), app_state={}), sock=listening
    )
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname())
        value = await asyncio.wait_for(accepted, 5)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


async def test_the_server_protocol_turns_nagle_off() -> None:
    assert await _nodelay_on_accepted(NoDelayHttpToolsProtocol) != 0


async def test_without_it_such_a_socket_keeps_nagle_on() -> None:
    """The case the protocol exists for. Should asyncio ever turn Nagle off here itself, this fails and
    NoDelayHttpToolsProtocol can go."""
    assert await _nodelay_on_accepted(HttpToolsProtocol) == 0


async def test_a_response_head_and_body_leave_in_one_write() -> None:
    """uvicorn writes the head and the body apart; with Nagle off each was a system call and a packet."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})

    config = uvicorn.Config(app=app, log_level="warning")
    config.load()
    writes: list[bytes] = []

    class Recording:
        def __init__(self, transport: Any) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            writes.append(bytes(data))
            self._transport.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

    class Observed(NoDelayHttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(Recording(transport))  # type: ignore[arg-type]

    server = await asyncio.get_running_loop().create_server(
        lambda: Observed(config=config, server_state=ServerState(), app_state={}), "127.0.0.1", 0
    )
    try:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        for _ in range(2):  # and again on the same connection
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(5) == b"hello"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert len(writes) == 2 and all(w.startswith(b"HTTP/1.1 200") and w.endswith(b"hello") for w in writes)
