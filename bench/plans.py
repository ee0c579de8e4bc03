"""The plans PostgreSQL makes for the discovery statements (and the other statements that apply the
listed rule) on a synthetic registry, printed without costs so that two runs can be compared with diff.

    python bench/plans.py [rows] > plans.txt     # DATABASE_URL, else the embedded PostgreSQL; 100000 rows

Each discovery shape is planned for its values (as the pool's connections plan: force_custom_plan) and,
when the service keeps one plan for every such search (unfiltered ranked searches), as that generic
plan too. The scratch database is dropped afterwards. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever else is installed
sys.path.insert(0, str(ROOT / "bench"))

SHAPES: list[dict[str, Any]] = [
    {"query": "I need to manage my google calendar events"},
    {"query": "kubernets"},
    {"query": "model context protocol", "domain": "org7.example.com"},
    {"query": "database", "capabilities": ["email", "files"]},
    {"query": "email", "transport": "stdio", "verified_only": True, "min_trust_score": 50},
    {"query": "send an email", "include_pending": True},
    {"domain": "org7.example.com"},
    {"capabilities": ["payments"]},
    {"transport": "sse"},
    {"category": "finance", "sort": "name"},
    {"sort": "trust"},
    {"sort": "latency"},
    {"sort": "newest"},
    {"sort": "name"},
    {"healthy_only": True, "exclude_capabilities": ["email"]},
    {"include_pending": True, "sort": "name"},
]

# Statements outside discovery's shapes that apply the listed rule or the probed rule, with values.
OTHERS: dict[str, dict[str, Any]] = {
    "capability_counts": {"limit": 100},
    "discovery_stats": {},
    "count_listed_servers": {},
    "embedding_progress": {"model": "all-MiniLM-L6-v2"},
    "claim_due_servers": {"now": "NOW", "lease_until": "LATER", "limit": 32},
}


def _explain(conn: psycopg.Connection[Any], query: str, params: dict[str, Any], generic: bool) -> str:
    from mcplookup_mcp.store.sqlfiles import positional

    prepared, names = positional(query)
    conn.execute("DEALLOCATE ALL")
    conn.execute(b"PREPARE shown AS " + prepared)
    conn.execute("SET plan_cache_mode = " + ("force_generic_plan" if generic else "force_custom_plan"))
    cur = psycopg.ClientCursor(conn)
    values = "(" + ", ".join(["%s"] * len(names)) + ")" if names else ""
    cur.execute("EXPLAIN (COSTS OFF) EXECUTE shown" + values, [params[name] for name in names])
    conn.execute("RESET plan_cache_mode")
    return "\n".join(row[0] for row in cur.fetchall())


async def _build(admin: str, name: str, rows: int) -> str:
    from discover import seeded
    from synth import synthesize

    url = await seeded(admin, name)
    with psycopg.connect(url, autocommit=True) as conn:
        synthesize(conn, rows)
        # Some registered servers whose domain lost its verification: active, yet not listed.
        conn.execute(
            "UPDATE mcp_servers SET verified = false WHERE source = 'register' AND name LIKE '%%-1_0'"
        )
        conn.execute("VACUUM ANALYZE mcp_servers")
        conn.execute("VACUUM ANALYZE search_postings")
    return url


async def _plans(url: str) -> list[tuple[str, dict[str, Any], bool]]:
    from mcplookup_mcp.core.settings import load_settings
    from mcplookup_mcp.services.discovery import DiscoveryService
    from mcplookup_mcp.store.repository import Repository, make_pool

    pool = make_pool(url, 2)
    await pool.open(wait=True)
    try:
        discovery = DiscoveryService(Repository(pool), load_settings({"MCPLOOKUP_ENV": "test"}))
        await discovery._load_cursor_key()
        shown = []
        for shape in SHAPES:
            plan = discovery.plan(shape | {"limit": 5})
            shown.append((plan.query_name, plan.params, plan.reuse_plan))
            if "query" not in plan.params:
                shown.append(("count_listing", plan.params | {"count_cap": 1001}, False))
        return shown
    finally:
        await pool.close()


def main() -> int:
    from mcplookup_mcp.store.sqlfiles import queries

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"mcpl_plans_{os.getpid()}"
    url = asyncio.run(_build(admin, name, rows))
    try:
        now = datetime.now(UTC)
        # Never prepared by psycopg itself: DEALLOCATE ALL would drop its statements.
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            for query_name, params, generic in asyncio.run(_plans(url)):
                shape = {k: v for k, v in params.items() if v not in (None, False) and k in _SHOWN}
                for kept in (False, True) if generic else (False,):
                    print(
                        f"== {query_name} {json.dumps(shape, sort_keys=True)}{' (kept plan)' if kept else ''}"
                    )
                    print(_explain(conn, queries()[query_name], params, kept))
            for query_name, params in OTHERS.items():
                values = {
                    k: now if v == "NOW" else now + timedelta(minutes=5) if v == "LATER" else v
                    for k, v in params.items()
                }
                print(f"== {query_name}")
                print(_explain(conn, queries()[query_name], values, False))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return 0


_SHOWN = {
    "query",
    "domain",
    "caps_all",
    "caps_any",
    "caps_exclude",
    "category",
    "transport",
    "verified_only",
    "healthy_only",
    "min_trust_score",
    "include_pending",
    "sort",
}

if __name__ == "__main__":
    raise SystemExit(main())
