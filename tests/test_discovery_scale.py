"""On 100k servers (ANALYZEd), no discovery query shape scans mcp_servers or search_postings sequentially."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import create_database, drop_database
from listing_support import import_seed

from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.repository import Repository, make_pool
from mcplookup_mcp.store.sqlfiles import positional, queries

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import synthesize

# Builds and plans against a 100k-row database, far slower than the rest.
pytestmark = pytest.mark.slow

ROWS = 100_000


@pytest.fixture(scope="module")
def big_db(pg_admin_url: str, template_db: str) -> Iterator[str]:
    name = f"mcpl_scale_{os.getpid()}"
    url = create_database(pg_admin_url, name, template=template_db)

    async def load() -> None:
        pool = make_pool(url, 2)
        await pool.open(wait=True)
        try:
            await import_seed(_Holder(Repository(pool)))  # type: ignore[arg-type]
        finally:
            await pool.close()

    asyncio.run(load())
    with psycopg.connect(url, autocommit=True) as conn:
        synthesize(conn, ROWS)
    yield url
    drop_database(pg_admin_url, name)


class _Holder:
    """import_seed only needs `.repo`."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo


SCANNED_BY_INDEX = ("mcp_servers", "search_postings")


def seq_scans(plan: Any) -> list[str]:
    found = []
    if isinstance(plan, dict):
        if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in SCANNED_BY_INDEX:
            found.append(plan.get("Filter", ""))
        for value in plan.values():
            found += seq_scans(value)
    elif isinstance(plan, list):
        for value in plan:
            found += seq_scans(value)
    return found


SHAPES: list[dict[str, Any]] = [
    {"query": "I need to manage my google calendar events"},
    {"query": "kubernets"},
    {"query": "model context protocol", "domain": "org7.example.com"},
    {"query": "database", "capabilities": ["email", "files"]},
    {"query": "database", "capabilities": ["email", "files"], "capability_match": "any"},
    {"query": "database", "exclude_capabilities": ["email"], "sort": "trust"},
    {"query": "email", "transport": "stdio", "verified_only": True, "min_trust_score": 50},
    {"domain": "org7.example.com"},
    {"capabilities": ["payments"]},
    {"capabilities": ["payments", "chat"], "capability_match": "any"},
    {"transport": "sse"},
    {"category": "finance", "sort": "name"},
    {"sort": "trust"},
    {"sort": "latency"},
    {"sort": "newest"},
    {"sort": "name"},
    {"healthy_only": True, "exclude_capabilities": ["email"]},
    {"include_pending": True, "sort": "name"},
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: json.dumps(s, sort_keys=True))
async def test_no_sequential_scan_at_100k(
    big_db: str, service: RegistryService, shape: dict[str, Any]
) -> None:
    pool = make_pool(big_db, 2)
    await pool.open(wait=True)
    try:
        discovery = type(service.discovery)(Repository(pool), service.settings)
        first = await discovery.discover(shape | {"limit": 5}, transport="test")
        assert first.count >= 1, shape
        plans = [discovery.plan(shape | {"limit": 5})]
        if first.next_cursor:
            plans.append(discovery.plan(shape | {"limit": 5, "cursor": first.next_cursor}))
    finally:
        await pool.close()
    with psycopg.connect(big_db) as conn:
        cur = psycopg.ClientCursor(conn)
        for plan in plans:
            cur.execute(b"EXPLAIN (FORMAT JSON) " + queries()[plan.query_name].encode(), plan.params)
            row = cur.fetchone()
            assert row is not None
            assert seq_scans(row[0]) == [], (plan.query_name, shape)
            if plan.reuse_plan:
                assert seq_scans(generic_plan(conn, queries()[plan.query_name], plan.params)) == [], shape


def generic_plan(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> Any:
    """The plan a connection keeps for every execution of `query` (Repository.read's kept_plans)."""
    prepared, names = positional(query)
    conn.execute("DEALLOCATE ALL")
    conn.execute(b"PREPARE ranked AS " + prepared)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    cur = psycopg.ClientCursor(conn)
    cur.execute(
        "EXPLAIN (FORMAT JSON) EXECUTE ranked(" + ", ".join(["%s"] * len(names)) + ")",
        [params[name] for name in names],
    )
    row = cur.fetchone()
    assert row is not None
    conn.execute("RESET plan_cache_mode")
    return row[0]


@pytest.mark.parametrize("shape", [{"query": "send an email"}, {"query": "database", "verified_only": True}])
async def test_no_sequential_scan_when_fused_at_100k(
    big_db: str, service: RegistryService, shape: dict[str, Any]
) -> None:
    """The fused statement with 40 nearest servers by meaning (as services/semantic.py passes them)."""
    with psycopg.connect(big_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM mcp_servers ORDER BY name LIMIT 40").fetchall()]
    pool = make_pool(big_db, 2)
    await pool.open(wait=True)
    try:
        discovery = type(service.discovery)(Repository(pool), service.settings)
        await discovery.discover(shape | {"limit": 5}, transport="test")  # loads the cursor key
        plan = discovery.plan(shape | {"limit": 5})
    finally:
        await pool.close()
    params = plan.params | {
        "sem_ids": ids,
        "sem_sims": [0.7 - i * 0.01 for i in range(40)],
        "sem_bound": 0.31,
        "sem_model": "bert-6x384@test",
        "mode": "fused",
    }
    with psycopg.connect(big_db) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute(b"EXPLAIN (FORMAT JSON) " + queries()[plan.query_name].encode(), params)
        row = cur.fetchone()
        assert row is not None
        assert seq_scans(row[0]) == [], shape
        if plan.reuse_plan:
            assert seq_scans(generic_plan(conn, queries()[plan.query_name], params)) == [], shape
        rows = psycopg.ClientCursor(conn).execute(queries()[plan.query_name].encode(), params).fetchall()
        assert rows, shape
