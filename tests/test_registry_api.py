"""/v0.1: the official registry read API's shapes, paging, updated_since and round-trips of imported entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from conftest import LiveServer
from test_discovery import SEED, add, import_seed, sql

from mcplookup_mcp.services.importer import check_entry, entries_of
from mcplookup_mcp.services.service import RegistryService

OFFICIAL = "io.modelcontextprotocol.registry/official"


def check_entry_shape(item: dict[str, Any]) -> None:
    assert set(item) == {"server", "_meta"}
    meta = item["_meta"][OFFICIAL]
    assert set(meta) == {"status", "publishedAt", "updatedAt", "isLatest"}
    assert meta["status"] in ("active", "deprecated", "deleted")
    for key in ("publishedAt", "updatedAt"):
        assert meta[key].endswith("Z") and datetime.fromisoformat(meta[key])
    assert {"name", "description", "version"} <= set(item["server"])


async def all_pages(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await http.get("/v0.1/servers", params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"servers", "metadata"} and body["metadata"]["count"] == len(body["servers"])
        items += body["servers"]
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            return items


async def test_imported_entries_round_trip_unchanged(service: RegistryService, live: LiveServer) -> None:
    await import_seed(service)
    entries = [e for e in entries_of(json.loads(SEED.read_text(encoding="utf-8"))) if check_entry(e) is None]
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        items = await all_pages(http, limit=100, version="latest")
        for item in items:
            check_entry_shape(item)
        served = {item["server"]["name"]: item["server"] for item in items}
        assert served == {e["name"]: e for e in entries}
        name = "io.github.cloudflare/mcp-server-cloudflare"
        one = await http.get(f"/v0.1/servers/{quote(name, safe='')}/versions/latest")
        assert one.status_code == 200 and one.json()["server"] == served[name]
        assert one.json()["_meta"][OFFICIAL]["isLatest"] is True
        exact = await http.get(f"/v0.1/servers/{quote(name, safe='')}/versions/0.0.1-seed")
        assert exact.json() == one.json()
        versions = await http.get(f"/v0.1/servers/{quote(name, safe='')}/versions")
        assert [v["server"]["version"] for v in versions.json()["servers"]] == ["0.0.1-seed"]
        search = (await http.get("/v0.1/servers", params={"search": "cloudflare"})).json()
        assert [s["server"]["name"] for s in search["servers"]] == [name]
        assert (await http.get("/v0.1/servers", params={"search": "%"})).json()["servers"] == []
        missing = await http.get("/v0.1/servers/io.github.nobody%2Fnothing/versions/latest")
        assert missing.status_code == 404
        assert (await http.get("/v0.1/servers", params={"cursor": "garbage!"})).status_code == 422
        assert (await http.get("/v0.1/servers", params={"updated_since": "yesterday"})).status_code == 422


async def test_registered_servers_appear_in_server_json_shape(live: LiveServer, db_url: str) -> None:
    add(
        db_url,
        "com.example/mail",
        description="Send email",
        source="register",
        verified=True,
        domain="example.com",
        transport="streamable-http",
        remotes=[{"type": "streamable-http", "url": "https://mcp.example.com/mcp"}],
    )
    add(db_url, "org.pending/mail", description="pending", status="pending", domain="pending.org")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        body = (await http.get("/v0.1/servers")).json()
    assert [i["server"]["name"] for i in body["servers"]] == ["com.example/mail"]
    item = body["servers"][0]
    check_entry_shape(item)
    assert item["server"]["remotes"] == [{"type": "streamable-http", "url": "https://mcp.example.com/mcp"}]
    assert item["_meta"]["org.mcplookup/discovery"]["verified"] is True


async def test_updated_since_sees_deletions_but_not_health_flaps(
    service: RegistryService, live: LiveServer, db_url: str
) -> None:
    await import_seed(service)
    since = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    sql(db_url, "SELECT pg_sleep(1.1)")
    sql(db_url, "UPDATE mcp_servers SET health_status = 'unreachable', trust_score = 5")
    sql(db_url, "UPDATE mcp_servers SET status = 'deleted' WHERE name = 'io.github.grafana/mcp-grafana'")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        changed = await all_pages(http, updated_since=since)
        assert [(i["server"]["name"], i["_meta"][OFFICIAL]["status"]) for i in changed] == [
            ("io.github.grafana/mcp-grafana", "deleted")
        ]
        listed = await all_pages(http, limit=100)
        assert "io.github.grafana/mcp-grafana" not in {i["server"]["name"] for i in listed}
        with_deleted = await all_pages(http, limit=100, include_deleted="true")
        assert len(with_deleted) == len(listed) + 1
