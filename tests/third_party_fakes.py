"""Fake raw-content (README) and package-registry servers, on loopback, speaking real HTTP.

`FakeSources` answers `/<owner>/<repo>/HEAD/README.md`, npm's `/<name>/latest` and PyPI's
`/pypi/<name>/json` from what a test puts in it, honours `If-None-Match`, and counts requests. The
hostile answers (huge, slow, a redirect, HTML) are set per path.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from mcp_targets import UvicornThread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.importer import Importer
from mcplookup_mcp.services.service import RegistryService, utcnow
from mcplookup_mcp.services.third_party import ThirdPartyReader

HOST = "127.0.0.1"


@dataclass
class Answer:
    body: bytes | str | dict[str, object] = ""
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200
    # Hostile modes: "huge" streams without end, "slow" sends a byte a second, "redirect" points at
    # `location`.
    mode: str = ""
    location: str = ""


@dataclass
class FakeSources:
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def readme(self, owner_repo: str, text: str, **kwargs: object) -> None:
        self.answers[f"/{owner_repo}/HEAD/README.md"] = Answer(text, **kwargs)  # type: ignore[arg-type]

    def hits(self, path: str) -> list[str | None]:
        """The If-None-Match of each request for `path`."""
        return [etag for p, etag in self.requests if p == path]

    def app(self) -> Starlette:
        async def handler(request: Request) -> Response:
            # Undecoded: npm's scoped names arrive as @scope%2Fname and must stay one path segment.
            path = request.scope["raw_path"].decode("latin-1")
            self.requests.append((path, request.headers.get("if-none-match")))
            answer = self.answers.get(path)
            if answer is None:
                return PlainTextResponse("404: Not Found", status_code=404)
            if answer.mode == "redirect":
                return RedirectResponse(answer.location, status_code=302)
            if answer.mode == "huge":
                return StreamingResponse(self._endless(), media_type=answer.content_type)
            if answer.mode == "slow":
                return StreamingResponse(self._slow(), media_type=answer.content_type)
            if isinstance(answer.body, dict):
                response: Response = JSONResponse(answer.body, status_code=answer.status)
            else:
                body = answer.body.encode() if isinstance(answer.body, str) else answer.body
                response = Response(body, status_code=answer.status, media_type=answer.content_type)
            if answer.status == 200:
                etag = '"' + hashlib.sha256(response.body).hexdigest()[:16] + '"'
                if request.headers.get("if-none-match") == etag:
                    return Response(status_code=304, headers={"ETag": etag})
                response.headers["ETag"] = etag
            return response

        return Starlette(routes=[Route("/{path:path}", handler, methods=["GET"])])

    async def _endless(self) -> AsyncIterator[bytes]:
        chunk = b"# Huge\n" + b"x" * 65_529 + b"\n"
        for _ in range(1024):  # 64 MiB, if anyone read it all
            yield chunk

    async def _slow(self) -> AsyncIterator[bytes]:
        for byte in b"# Slow\nThis README arrives one byte a second.\n":
            yield bytes([byte])
            await asyncio.sleep(1.0)


def start_fake(sources: FakeSources) -> UvicornThread:
    return UvicornThread(sources.app(), host=HOST).start()


def settings_for(base: Settings, fake: UvicornThread, **changes: object) -> Settings:
    """The app's settings reading READMEs and packages from `fake`: loopback opened as tests do."""
    url = f"http://{HOST}:{fake.port}"
    return replace(
        base,
        probe_allow_cidrs=(ipaddress.ip_network("127.0.0.0/8"),),
        probe_ports=frozenset({443, fake.port}),
        allow_http_endpoints=True,
        readme_base_url=url,
        npm_registry_url=url,
        pypi_url=url,
        **changes,  # type: ignore[arg-type]
    )


ANKI = "io.github.scorzeth/anki-mcp-server"


# What the official server.json schema asks of every package: how it is spoken to.
STDIO: dict[str, Any] = {"transport": {"type": "stdio"}}


def server_entry(name: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": description, "version": "1.0.0", **extra}


async def import_entries(service: RegistryService, *entries: dict[str, Any]) -> None:
    await Importer(service.repo, utcnow).run(list(entries))


def reader_for(service: RegistryService, settings: Settings, clock: Any = utcnow) -> ThirdPartyReader:
    return ThirdPartyReader(
        service.repo, settings, make_resolver(list(settings.dns_nameservers), 1.0), clock=clock
    )


def anki_entry(**extra: Any) -> dict[str, Any]:
    return server_entry(
        ANKI,
        "An MCP server for Anki",
        repository={"url": "https://github.com/scorzeth/anki-mcp-server", "source": "github"},
        **extra,
    )
