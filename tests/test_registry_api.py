"""/v0.1: the official registry read API's shapes, paging, updated_since and round-trips of imported entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import LiveServer
from listing_support import SEED, add, import_seed, sql
from registry_schema import registry_client

from mcplookup_mcp.services.importer import Importer, admit, entries_of
from mcplookup_mcp.services.server_json import conform
from mcplookup_mcp.services.service import RegistryService, utcnow

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


@pytest.mark.slow  # imports the seed and reads every entry back
async def test_imported_entries_round_trip_unchanged(service: RegistryService, live: LiveServer) -> None:
    await import_seed(service)
    entries = [e for e in entries_of(json.loads(SEED.read_text(encoding="utf-8"))) if admit(e)[0] is None]
    async with registry_client(live.base_url) as http:
        items = await all_pages(http, limit=100, version="latest")
        for item in items:
            check_entry_shape(item)
        served = {item["server"]["name"]: item["server"] for item in items}
        # Verbatim where the official schema allows it; otherwise the documented fixes (server_json.py).
        assert served == {e["name"]: conform(e, e["version"])[0] for e in entries}
        assert (
            sum(served[e["name"]] == e for e in entries) == len(entries) - 72 - 103 - 1
        )  # empty, long, a typeless remote
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
        for missing_name in ("io.github.nobody%2Fnothing", "no%20slash%20or%20pattern", "a" * 300):
            for path in (
                f"/v0.1/servers/{missing_name}/versions",
                f"/v0.1/servers/{missing_name}/versions/1",
            ):
                missing = await http.get(path)
                assert missing.status_code == 404, path
                assert (missing.json()["title"], missing.json()["detail"]) == (
                    "Not Found",
                    "Server not found",
                )
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
    async with registry_client(live.base_url) as http:
        body = (await http.get("/v0.1/servers")).json()
    assert [i["server"]["name"] for i in body["servers"]] == ["com.example/mail"]
    item = body["servers"][0]
    check_entry_shape(item)
    assert item["server"]["remotes"] == [{"type": "streamable-http", "url": "https://mcp.example.com/mcp"}]
    assert item["_meta"]["org.mcplookup/discovery"]["verified"] is True


@pytest.mark.slow  # imports the seed
async def test_updated_since_sees_deletions_but_not_health_flaps(
    service: RegistryService, live: LiveServer, db_url: str
) -> None:
    await import_seed(service)
    since = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    sql(db_url, "SELECT pg_sleep(1.1)")
    sql(db_url, "UPDATE mcp_servers SET health_status = 'unreachable', trust_score = 5")
    sql(db_url, "UPDATE mcp_servers SET status = 'deleted' WHERE name = 'io.github.grafana/mcp-grafana'")
    async with registry_client(live.base_url) as http:
        changed = await all_pages(http, updated_since=since)
        assert [(i["server"]["name"], i["_meta"][OFFICIAL]["status"]) for i in changed] == [
            ("io.github.grafana/mcp-grafana", "deleted")
        ]
        listed = await all_pages(http, limit=100)
        assert "io.github.grafana/mcp-grafana" not in {i["server"]["name"] for i in listed}
        with_deleted = await all_pages(http, limit=100, include_deleted="true")
        assert len(with_deleted) == len(listed) + 1


async def test_v01_shortens_fills_and_drops_what_the_schema_refuses(
    service: RegistryService, live: LiveServer
) -> None:
    long_text = "Reads and writes spreadsheets, " * 10
    entries = [
        {"name": "io.github.fix/long", "description": long_text, "version": "1.0.0"},
        {"name": "io.github.fix/empty", "description": "", "title": "Empty Tool", "version": "1.0.0"},
        {
            "name": "io.github.fix/remote",
            "description": "has a typeless remote",
            "version": "1.0.0",
            "remotes": [{"type": "", "url": "https://r.example.com/sse"}],
        },
    ]
    summary = await Importer(service.repo, utcnow).run(entries)
    assert [(f.name, f.fixes) for f in summary.fixed] == [
        ("io.github.fix/long", ["description-shortened"]),
        ("io.github.fix/empty", ["description-filled"]),
        ("io.github.fix/remote", ["remote-dropped"]),
    ]
    async with registry_client(live.base_url) as http:
        served = {i["server"]["name"]: i for i in await all_pages(http)}
        native = (await http.get("/api/v1/servers/io.github.fix/long")).json()
    long_served = served["io.github.fix/long"]
    assert len(long_served["server"]["description"]) <= 100
    assert long_served["server"]["description"].endswith("…")
    assert long_text.startswith(long_served["server"]["description"][:-1])
    assert long_served["_meta"]["org.mcplookup/discovery"]["fixed"] == ["description-shortened"]
    assert native["server"]["description"] == long_text  # the native API keeps the full text
    assert served["io.github.fix/empty"]["server"]["description"] == "Empty Tool"
    assert "remotes" not in served["io.github.fix/remote"]["server"]


@pytest.mark.slow  # imports the seed
async def test_include_deleted_follows_the_official_handler(
    service: RegistryService, live: LiveServer
) -> None:
    await import_seed(service)
    since = "2020-01-01T00:00:00Z"
    async with registry_client(live.base_url) as http:
        refused = await http.get("/v0.1/servers", params={"updated_since": since, "include_deleted": "false"})
        assert refused.status_code == 400 and refused.json()["title"] == "Bad Request"
        assert refused.json()["detail"] == (
            "Cannot set include_deleted=false when using updated_since (incremental sync requires deleted servers)"
        )
        garbage = await http.get("/v0.1/servers", params={"updated_since": since, "include_deleted": "maybe"})
        assert garbage.status_code == 422 and garbage.json()["field"] == "include_deleted"
        both = await http.get("/v0.1/servers", params={"updated_since": since, "include_deleted": "true"})
        alone = await http.get("/v0.1/servers", params={"updated_since": since})
        assert both.status_code == alone.status_code == 200 and both.json() == alone.json()


@pytest.mark.slow  # imports the seed
async def test_v0_answers_as_v01(service: RegistryService, live: LiveServer) -> None:
    await import_seed(service)
    name = quote("io.github.cloudflare/mcp-server-cloudflare", safe="")
    async with registry_client(live.base_url) as http:
        for path in ("/servers?limit=5", f"/servers/{name}/versions", f"/servers/{name}/versions/latest"):
            old, new = await http.get(f"/v0{path}"), await http.get(f"/v0.1{path}")
            assert old.status_code == new.status_code == 200 and old.json() == new.json(), path
        assert (await http.get("/v0/servers/nobody%2Fhere/versions")).status_code == 404
