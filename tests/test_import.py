"""`mcplookup import`: every named seed entry loads, re-import changes nothing, broken entries are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from listing_support import SEED, add, import_seed, rows
from psycopg.conninfo import conninfo_to_dict

from mcplookup_mcp.services.importer import Importer, blocked_url, entries_of
from mcplookup_mcp.services.service import RegistryService, utcnow

ROOT = Path(__file__).resolve().parents[1]


def snapshot(db_url: str) -> list[tuple]:
    return rows(
        db_url,
        "SELECT name, description, version, transport, transports, endpoint, remotes, packages, remotes_blocked,"
        " updated_at, listing_updated_at FROM mcp_servers ORDER BY name",
    ) + rows(
        db_url,
        "SELECT server_name, version, server_json, is_latest, updated_at FROM server_versions ORDER BY 1, 2",
    )


@pytest.mark.slow  # imports the seed twice
async def test_seed_loads_and_reimport_changes_nothing(service: RegistryService, db_url: str) -> None:
    entries = entries_of(json.loads(SEED.read_text(encoding="utf-8")))
    named = [e for e in entries if isinstance(e, dict) and e.get("name")]
    first = await Importer(service.repo, utcnow).run(entries)
    assert (first.created, first.updated, first.unchanged) == (len(named), 0, 0)
    # The seed's 471 entries: 464 named, 7 empty placeholders (every field empty), each skipped saying so.
    assert (len(entries), len(named)) == (471, 464)
    no_name = "it has no name (the name field is missing or empty), and entries are keyed by name"
    assert [(s.index, s.entry, s.reason) for s in first.skipped] == [
        (i, "an empty entry: name, description, version, repository all empty", no_name)
        for i in (15, 25, 108, 132, 188, 207, 406)
    ]
    assert rows(
        db_url, "SELECT count(*), count(*) FILTER (WHERE source = 'import' AND NOT verified) FROM mcp_servers"
    ) == [(len(named), len(named))]
    before = snapshot(db_url)
    again = await Importer(service.repo, utcnow).run(entries)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(named))
    assert snapshot(db_url) == before


@pytest.mark.slow  # imports the seed
async def test_transport_and_blocked_remotes(service: RegistryService, db_url: str) -> None:
    await import_seed(service)
    got = dict(
        (name, (transport, transports, endpoint, blocked))
        for name, transport, transports, endpoint, blocked in rows(
            db_url, "SELECT name, transport, transports, endpoint, remotes_blocked FROM mcp_servers"
        )
    )
    assert got["io.github.azure/azure-mcp"] == ("sse", ["sse"], None, True)  # http://localhost:5008/sse
    assert got["io.github.cloudflare/mcp-server-cloudflare"] == (
        "sse",
        ["sse", "stdio"],
        "https://observability.mcp.cloudflare.com/sse",
        False,
    )
    assert got["io.github.21st-dev/magic-mcp"] == ("stdio", ["stdio"], None, False)
    result = await service.discover({"query": "azure", "limit": 3}, transport="test")
    azure = next(s for s in result.servers if s.name == "io.github.azure/azure-mcp")
    assert azure.imported and not azure.verified and azure.remotes_blocked and azure.endpoint is None


def test_blocked_urls() -> None:
    for url in [
        "http://localhost:5008/sse",
        "http://127.0.0.1/mcp",
        "https://10.1.2.3/mcp",
        "http://[::1]:80/",
        "http://169.254.169.254/latest",
        "http://192.168.0.1/",
        "http://app.localhost/",
        "http://0.0.0.0/",
        # IPv4 addresses inside IPv6 (6to4, NAT64): the prober's rule sees through them, and so must this
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
    ]:
        assert blocked_url(url), url
    for url in ["https://mcp.example.com/mcp", "https://8.8.8.8/mcp"]:
        assert not blocked_url(url), url


async def test_broken_entries_are_reported_and_the_rest_load(service: RegistryService, db_url: str) -> None:
    good = {"name": "io.github.ok/tool", "description": "fine", "version": "1.0.0"}
    entries = [
        "not an object",
        {"description": "no name"},
        {"name": "no slash here"},
        {"name": "io.github.x/y", "description": 7},
        {"name": "io.github.x/z", "remotes": "nope"},
        {"name": "io.github.x/w", "remotes": [{"type": "sse"}]},
        good,
    ]
    summary = await Importer(service.repo, utcnow).run(entries)
    assert summary.created == 1
    assert [(s.index, s.name) for s in summary.skipped] == [
        (0, None),
        (1, None),
        (2, "no slash here"),
        (3, "io.github.x/y"),
        (4, "io.github.x/z"),
        (5, "io.github.x/w"),
    ]
    assert all(s.reason for s in summary.skipped)
    assert [s.entry for s in summary.skipped[:3]] == [
        "a JSON string, not an object",
        'no name; description="no name"',
        "no slash here",
    ]
    assert rows(db_url, "SELECT name FROM mcp_servers") == [("io.github.ok/tool",)]


async def test_versions_keep_one_latest_and_the_listing_follows_it(
    service: RegistryService, db_url: str
) -> None:
    base = {"name": "io.github.v/tool", "description": "v"}
    importer = Importer(service.repo, utcnow)
    await importer.run([base | {"version": "1.9.0"}, base | {"version": "1.10.0", "description": "newer"}])
    summary = await importer.run([base | {"version": "1.2.0", "description": "older"}])
    assert summary.updated == 1  # a new version row, not the latest
    assert rows(db_url, "SELECT version FROM server_versions WHERE is_latest") == [("1.10.0",)]
    assert rows(db_url, "SELECT version, description FROM mcp_servers") == [("1.10.0", "newer")]
    assert rows(db_url, "SELECT count(*) FROM server_versions") == [(3,)]


def test_cli_import_prints_a_summary(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"name": "io.github.cli/one", "description": "one", "version": "1.0.0"}))
    parts = conninfo_to_dict(db_url)
    query = urlencode({k: v for k, v in parts.items() if k in ("host", "port", "user", "password")})
    url = f"postgresql:///{parts['dbname']}?{query}"
    env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created 1, updated 0, unchanged 0, skipped 0")
    assert "[" not in done.stderr  # no progress bar when stderr is not a terminal
    bad = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp", "import", str(tmp_path / "missing.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "cannot read" in bad.stderr


async def test_entries_the_official_schema_refuses_are_reported_not_stored(
    service: RegistryService, db_url: str
) -> None:
    entries = [
        {
            "name": "io.github.bad/pkg",
            "description": "x",
            "version": "1.0.0",
            "packages": [{"registryType": "npm"}],
        },
        {
            "name": "io.github.bad/remote",
            "description": "x",
            "version": "1.0.0",
            "remotes": [{"type": "sse", "url": "ftp://files.example.com/sse"}],
        },
        {"name": "io.github.ok/short", "description": "", "version": "1.0.0"},
    ]
    summary = await Importer(service.repo, utcnow).run(entries)
    assert [(s.name, s.reason.split(":")[0]) for s in summary.skipped] == [
        ("io.github.bad/pkg", "the official server.json schema refuses it"),
        ("io.github.bad/remote", "the official server.json schema refuses it"),
    ]
    assert "packages/0" in summary.skipped[0].reason
    assert [(f.name, f.fixes) for f in summary.fixed] == [("io.github.ok/short", ["description-filled"])]
    assert rows(db_url, "SELECT name, description FROM mcp_servers") == [("io.github.ok/short", "")]


async def test_import_leaves_a_verified_domains_namespace_alone(
    service: RegistryService, db_url: str
) -> None:
    add(
        db_url, "com.example/mail", description="ours", source="register", verified=True, domain="example.com"
    )
    entries = [
        {"name": "com.example/mail", "description": "theirs", "version": "1.0.0"},
        {"name": "com.example/new", "description": "theirs", "version": "1.0.0"},
        {"name": "com.examples/new", "description": "another domain", "version": "1.0.0"},
    ]
    summary = await Importer(service.repo, utcnow).run(entries)
    assert [(s.name, s.reason) for s in summary.skipped] == [
        ("com.example/mail", "the name belongs to a DNS-verified registration"),
        ("com.example/new", "the name is in the namespace of example.com, a domain verified here"),
    ]
    assert rows(db_url, "SELECT name, description FROM mcp_servers ORDER BY name") == [
        ("com.example/mail", "ours"),
        ("com.examples/new", "another domain"),
    ]
