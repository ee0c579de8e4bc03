"""A fake upstream MCP registry on loopback, speaking the official read API (/v0.1/servers): keyset
pages with opaque cursors, `updated_since` (strictly after, deleted entries included), `include_deleted`,
`isLatest`. Its answers are checked against the official OpenAPI excerpt before they are sent, so the
sync tests read what a real registry could send. `faults` makes the next requests misbehave: 429 with
Retry-After, 500, garbage, a stall past the client's timeout, a page over the body cap."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_targets import UvicornThread
from registry_schema import check_answer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

OFFICIAL = "io.modelcontextprotocol.registry/official"
SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Version:
    server: dict[str, Any]
    status: str
    published_at: datetime
    updated_at: datetime
    is_latest: bool


@dataclass
class FakeRegistry:
    versions: dict[tuple[str, str], Version] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    stall_seconds: float = 5.0
    # False plays a registry less strict than the official one (descriptions over 100 characters...).
    strict: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Every change gets a distinct time, a millisecond after the last, never in the future.
    _last: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=1))

    def _tick(self) -> datetime:
        self._last = max(self._last + timedelta(milliseconds=1), datetime.now(UTC) - timedelta(minutes=30))
        return self._last

    def publish(self, name: str, version: str, description: str = "a server", **extra: Any) -> None:
        with self.lock:
            now = self._tick()
            for (other, _), held in self.versions.items():
                if other == name and held.is_latest:
                    held.is_latest = False
                    held.updated_at = now
            server = {
                "$schema": SCHEMA,
                "name": name,
                "description": description,
                "version": version,
                **extra,
            }
            self.versions[(name, version)] = Version(server, "active", now, now, True)

    def set_status(self, name: str, version: str, status: str) -> None:
        with self.lock:
            held = self.versions[(name, version)]
            held.status, held.updated_at = status, self._tick()

    def bulk(self, count: int, prefix: str = "io.github.bulk") -> None:
        """`count` servers of one version each, spread over the last half hour."""
        start = datetime.now(UTC) - timedelta(minutes=30)
        with self.lock:
            for i in range(count):
                at = start + timedelta(microseconds=100 * i)
                name = f"{prefix}/server-{i:06d}"
                server = {
                    "$schema": SCHEMA,
                    "name": name,
                    "description": f"bulk server {i}",
                    "version": "1.0.0",
                }
                self.versions[(name, "1.0.0")] = Version(server, "active", at, at, True)
                self._last = max(self._last, at)

    def _item(self, held: Version) -> dict[str, Any]:
        meta = {
            "status": held.status,
            "publishedAt": _time(held.published_at),
            "updatedAt": _time(held.updated_at),
            "isLatest": held.is_latest,
        }
        return {"server": held.server, "_meta": {OFFICIAL: meta}}

    def page(self, params: dict[str, str]) -> dict[str, Any]:
        limit = min(int(params.get("limit", "30")), 100)
        since = params.get("updated_since")
        since_at = datetime.fromisoformat(since) if since else None
        include_deleted = since_at is not None or params.get("include_deleted") == "true"
        after: tuple[str, str] | None = None
        if params.get("cursor"):
            name, version = json.loads(base64.urlsafe_b64decode(params["cursor"]))
            after = (name, version)
        with self.lock:
            keys = sorted(self.versions)
            chosen = [
                self.versions[k]
                for k in keys
                if (after is None or k > after)
                and (since_at is None or self.versions[k].updated_at > since_at)
                and (include_deleted or self.versions[k].status != "deleted")
            ]
        items = [self._item(v) for v in chosen[: limit + 1]]
        more = len(items) > limit
        items = items[:limit]
        metadata: dict[str, Any] = {"count": len(items)}
        if more:
            last = items[-1]["server"]
            metadata["nextCursor"] = base64.urlsafe_b64encode(
                json.dumps([last["name"], last["version"]]).encode()
            ).decode()
        return {"servers": items, "metadata": metadata}

    def app(self) -> Starlette:
        async def servers(request: Request) -> Response:
            params = dict(request.query_params)
            self.requests.append(params)
            fault = self.faults.pop(0) if self.faults else None
            if fault == "429":
                return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "1"})
            if fault == "400":
                return JSONResponse(
                    {"title": "Bad Request", "detail": "Invalid cursor parameter"}, status_code=400
                )
            if fault == "500":
                return JSONResponse({"error": "boom"}, status_code=500)
            if fault == "garbage":
                return Response(b"<html>not json", media_type="text/html")
            if fault == "not-a-list":
                return JSONResponse({"servers": "nope"})
            if fault == "stall":
                await asyncio.sleep(self.stall_seconds)
            if fault == "redirect":
                return RedirectResponse("http://10.0.0.1/v0.1/servers", status_code=302)
            if fault == "huge-chunked":
                # No Content-Length: the cap must hold while reading.
                return StreamingResponse(_chunks(b"x" * 65_536, 64), media_type="application/json")
            if fault == "drip":
                return StreamingResponse(_drip(), media_type="application/json")
            if fault == "huge":
                return JSONResponse({"servers": [{"server": {"name": "x" * 1000}}] * 10_000, "metadata": {}})
            body = self.page(params)
            if self.strict:
                check_answer("/v0.1/servers", 200, body)
            return JSONResponse(body)

        return Starlette(routes=[Route("/v0.1/servers", servers)])


async def _chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield chunk


async def _drip() -> AsyncIterator[bytes]:
    """A valid answer, one byte every 0.2 s: each read is quick, the whole is not."""
    for byte in b'{"servers": [], "metadata": {}}':
        yield bytes([byte])
        await asyncio.sleep(0.2)


class FakeRegistryServer:
    """The fake registry, served by uvicorn on 127.0.0.1 for the length of a `with` block."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self._thread = UvicornThread(registry.app(), host="127.0.0.1")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._thread.port}"

    def __enter__(self) -> FakeRegistryServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.stop()
