"""Probe targets for the health prober's tests: real servers on loopback, each in its own thread.

On Linux all of 127.0.0.0/8 is bound to lo, so targets listen on 127.0.0.2 (reachable only through an
allowlist) while 127.0.0.1 stays free for the listener that must never be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TARGET_IP = "127.0.0.2"
SERVER_NAME = "probe-target"
SERVER_VERSION = "1.2.3"
# Tool descriptions carry control and bidi characters: the prober must strip them.
TOOLS = {
    "add": "Add two integers.",
    "echo": "Echo the text\x1b[31m back\u202e unchanged.\x00",
}
CLEAN_TOOLS = {"add": "Add two integers.", "echo": "Echo the text[31m back unchanged."}

_NO_HOST_CHECK = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def _mcp_server() -> MCPServer:
    mcp = MCPServer(SERVER_NAME, version=SERVER_VERSION)

    @mcp.tool(description=TOOLS["add"])
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description=TOOLS["echo"])
    def echo(text: str) -> str:
        return text

    return mcp


def sdk_streamable_app(*, stateless: bool = True) -> Starlette:
    """The SDK over streamable HTTP at /mcp: stateless JSON, or stateful with SSE replies and a session."""
    return _mcp_server().streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=stateless,
        json_response=stateless,
        transport_security=_NO_HOST_CHECK,
    )


def sdk_sse_app() -> Starlette:
    """The SDK's legacy HTTP+SSE transport: GET /sse, POST /messages/."""
    return _mcp_server().sse_app(transport_security=_NO_HOST_CHECK)


def delayed(app: ASGIApp, seconds: float) -> ASGIApp:
    """`app`, answering every POST `seconds` late."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body: list[Message] = []
        while not body or body[-1].get("more_body", False):
            body.append(await receive())
        # Wait, but stop early when the client hangs up, so no request outlives the test's server.
        try:
            message = await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            pass
        else:
            if message["type"] == "http.disconnect":
                return
        replay = iter(body)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await app(scope, replayed, send)

    return wrapper


class Recorder:
    """Wraps an ASGI app and keeps (method, path, headers) of every HTTP request it receives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.requests.append((scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)


def _app(handler: Callable[[Request], Awaitable[Response]], path: str = "/mcp") -> Starlette:
    return Starlette(routes=[Route(path, handler, methods=["GET", "POST", "DELETE"])])


def unauthorized_app() -> Starlette:
    async def handler(request: Request) -> Response:
        return JSONResponse(
            {"error": "invalid_token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer resource_metadata="https://auth.example.test/meta"'},
        )

    return _app(handler)


def html_app() -> Starlette:
    async def handler(request: Request) -> Response:
        return HTMLResponse("<!doctype html><html><body><h1>Welcome to our website</h1></body></html>")

    return _app(handler)


def status_app(status: int) -> Starlette:
    async def handler(request: Request) -> Response:
        return JSONResponse({"detail": "nope"}, status_code=status)

    return _app(handler)


def raw_json_app(body: bytes) -> Starlette:
    """Answers every request 200 application/json with `body`, whatever it is."""

    async def handler(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return _app(handler)


def redirect_app(location: str, status: int = 307) -> Starlette:
    async def handler(request: Request) -> Response:
        return RedirectResponse(location, status_code=status)

    return Starlette(
        routes=[Route("/{path:path}", handler, methods=["GET", "POST"])],
    )


def _jsonrpc_result(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def tools_failing_app() -> Starlette:
    """A hand-written MCP endpoint whose initialize works and whose tools/list answers a JSON-RPC error."""

    async def handler(request: Request) -> Response:
        message = await request.json()
        method = message.get("method")
        if method == "initialize":
            return JSONResponse(
                _jsonrpc_result(
                    message["id"],
                    {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "half-broken", "version": "0.1"},
                    },
                )
            )
        if "id" not in message:
            return Response(status_code=202)
        error = {"code": -32603, "message": "database is down"}
        return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "error": error})

    return _app(handler)


def legacy_endpoint_app(endpoint: str) -> Starlette:
    """A minimal legacy HTTP+SSE server whose endpoint event names `endpoint` (anything, even forbidden).

    POSTs to /messages are accepted (202) and never answered on the stream.
    """

    async def events() -> AsyncIterator[bytes]:
        yield f"event: endpoint\ndata: {endpoint}\n\n".encode()
        while True:
            await asyncio.sleep(0.5)
            yield b": keep-alive\n\n"

    async def handler(request: Request) -> Response:
        return StreamingResponse(events(), media_type="text/event-stream")

    async def accept(request: Request) -> Response:
        return Response(status_code=202)

    return Starlette(
        routes=[Route("/sse", handler, methods=["GET"]), Route("/messages", accept, methods=["POST"])]
    )


def oversized_app(size: int) -> Starlette:
    async def handler(request: Request) -> Response:
        padding = "x" * size
        return Response(
            f'{{"jsonrpc": "2.0", "id": 1, "result": {{"p": "{padding}"}}}}', media_type="application/json"
        )

    return _app(handler)


class UvicornThread:
    """An ASGI app served by uvicorn on `host` (ephemeral port) in a daemon thread."""

    def __init__(
        self, app: ASGIApp, host: str = TARGET_IP, *, certfile: str | None = None, keyfile: str | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = 0
        self._certfile = certfile
        self._keyfile = keyfile
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/mcp", hostname: str = "mcp.example.test") -> str:
        scheme = "https" if self._certfile else "http"
        return f"{scheme}://{hostname}:{self.port}{path}"

    def start(self, timeout: float = 10.0) -> UvicornThread:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,
            lifespan="auto",
            ssl_certfile=self._certfile,
            ssl_keyfile=self._keyfile,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ClosingListener:
    """Plain TCP listeners on one port of several addresses: count each accept, then close unanswered.

    Used both as the "connection closed" target and as the sentinel that SSRF-blocked probes must never
    reach.
    """

    def __init__(self, hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.hosts = hosts
        self.port = 0
        self._lock = threading.Lock()
        self._accepts: list[str] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def accepts(self) -> list[str]:
        with self._lock:
            return list(self._accepts)

    def start(self) -> ClosingListener:
        for _ in range(20):
            try:
                self._sockets = self._bind_all()
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        else:
            raise OSError(errno.EADDRINUSE, "no port free on every host")
        for sock in self._sockets:
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _bind_all(self) -> list[socket.socket]:
        sockets: list[socket.socket] = []
        port = 0
        try:
            for host in self.hosts:
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
                sockets.append(sock)
                sock.bind((host, port))
                sock.listen(16)
                sock.settimeout(0.05)
                port = sock.getsockname()[1]
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self.port = port
        return sockets

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                # The address that was connected to (the client's source may differ on loopback).
                self._accepts.append(str(conn.getsockname()[0]))
            with conn, contextlib.suppress(OSError):
                # Read the request first, so the client sees a clean close rather than a reset.
                conn.settimeout(0.5)
                conn.recv(65536)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> ClosingListener:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def write_cert(
    ca: trustme.CA,
    directory: Path,
    stem: str,
    *hostnames: str,
    not_after: datetime.datetime | None = None,
) -> tuple[str, str]:
    """A server certificate from `ca` as (certfile, keyfile) paths, for uvicorn."""
    not_before = None
    if not_after is not None and not_after < datetime.datetime.now(datetime.UTC):
        not_before = not_after - datetime.timedelta(days=30)
    cert = ca.issue_cert(*hostnames, not_before=not_before, not_after=not_after)
    certfile, keyfile = directory / f"{stem}.crt", directory / f"{stem}.key"
    for blob in cert.cert_chain_pems:
        with certfile.open("ab") as handle:
            handle.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawTarget:
    """A hand-written HTTP server on `host` (ephemeral port): each connection runs `handler` on an event
    loop in a thread of its own, for answers no ASGI server gives (headers dripped a byte at a time).
    `sent` counts the bytes handlers report writing, across connections."""

    def __init__(self, handler: RawHandler, host: str = TARGET_IP) -> None:
        self.handler = handler
        self.host = host
        self.port = 0
        self.sent = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/mcp", hostname: str = "mcp.example.test") -> str:
        return f"http://{hostname}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await read_request_head(reader)
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def start(self) -> RawTarget:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self.host, 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> RawTarget:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def read_request_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers; the body (the probe's small JSON-RPC message) is read too."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value.strip()))
    return head
