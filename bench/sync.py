"""What `mcplookup sync` costs: a fake upstream registry on loopback holding N entries, read into an empty
database, then read again with nothing new, then with 1 % of the entries changed.

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres .venv/bin/python bench/sync.py [--entries 10000]

The fake (tests/fake_registry.py) answers the official read API under uvicorn in a thread of this
process, so it shares the cores with the sync it serves; its answers are not schema-checked here (that
is the tests' job), to keep its own cost small. A scratch database `mcpl_sync_<pid>` is created,
migrated, and dropped afterwards. Printed, never asserted.

Measured on 2026-12-04, 2 cores shared with other test suites running at the time, PostgreSQL 15 on
127.0.0.1, 10,000 entries, pages of 100 (the table and the caveats: docs/sync.md):

    first sync (all new)          115.61 s  pages  100  requests  100  read  10000  created  10000
    second sync (nothing new)       0.05 s  pages    1  requests    1  read      0
    third sync (100 new versions)   4.54 s  pages    2  requests    2  read    200  updated 100  unchanged 100
    second / first: 0.0005   third / first: 0.0393
    first sync / mcplookup import of the same 10000 entries (221.85 s): 0.52
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_registry import FakeRegistry, FakeRegistryServer  # noqa: E402

from mcplookup_mcp.core.settings import load_settings  # noqa: E402
from mcplookup_mcp.probe.dns_resolver import make_resolver  # noqa: E402
from mcplookup_mcp.services.importer import Importer  # noqa: E402
from mcplookup_mcp.services.service import utcnow  # noqa: E402
from mcplookup_mcp.services.upstream_sync import UpstreamReport, build_sync  # noqa: E402
from mcplookup_mcp.store.migrate import apply_migrations  # noqa: E402
from mcplookup_mcp.store.repository import Repository, make_pool  # noqa: E402


def _url(admin: str, name: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(admin)
    parts["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})


async def measure(url: str, base_url: str, fake: FakeRegistry, label: str) -> tuple[UpstreamReport, float]:
    settings = replace(
        load_settings({"MCPLOOKUP_ENV": "test"}),
        upstream_registries=(base_url,),
        sync_max_seconds=3600.0,
        sync_page_size=100,
    )
    pool = make_pool(url, 2)
    await pool.open(wait=True)
    sync = build_sync(Repository(pool), settings, make_resolver([], 2.0), utcnow)
    fake.requests.clear()
    started = time.perf_counter()
    try:
        (report,) = await sync.run()
    finally:
        await sync.client.aclose()
        await pool.close()
    took = time.perf_counter() - started
    read = report.created + report.updated + report.unchanged + len(report.refused)
    print(
        f"{label:26} {took:8.2f} s  pages {report.pages:4}  requests {len(fake.requests):4}  read {read:6}  "
        f"created {report.created:6}  updated {report.updated:4}  unchanged {report.unchanged:5}  "
        f"{read / took if took else 0:8.0f} entries/s  finished {report.finished}"
    )
    return report, took


async def main(admin: str, entries: int) -> None:
    name = f"mcpl_sync_{os.getpid()}"
    url = _url(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        await apply_migrations(url)
        fake = FakeRegistry(strict=False)
        fake.bulk(entries)
        with FakeRegistryServer(fake) as server:
            print(f"{entries} upstream entries at {server.base_url}, pages of 100, into {name}")
            _, first = await measure(url, server.base_url, fake, "first sync (all new)")
            _, second = await measure(url, server.base_url, fake, "second sync (nothing new)")
            changed = max(1, entries // 100)
            for i in range(changed):
                fake.publish(f"io.github.bulk/server-{i * 100:06d}", "1.1.0", f"bulk server {i * 100}, newer")
            _, third = await measure(url, server.base_url, fake, f"third sync ({changed} new versions)")
        imported = await import_same(
            admin, f"{name}_import", [v.server for v in fake.versions.values()][:entries]
        )
        print(f"second / first: {second / first:.4f}   third / first: {third / first:.4f}")
        print(
            f"first sync / mcplookup import of the same {entries} entries ({imported:.2f} s): {first / imported:.2f}"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def import_same(admin: str, name: str, servers: list[dict[str, object]]) -> float:
    """Seconds the importer takes for the same entries into an empty database: what applying costs alone."""
    url = _url(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        await apply_migrations(url)
        pool = make_pool(url, 2)
        await pool.open(wait=True)
        try:
            started = time.perf_counter()
            await Importer(Repository(pool), utcnow).run(servers)
            return time.perf_counter() - started
        finally:
            await pool.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        raise SystemExit(
            "set DATABASE_URL to an admin connection (e.g. postgresql://postgres@127.0.0.1/postgres)"
        )
    asyncio.run(main(admin, args.entries))
