"""Cost of recording a probe: insert the row, recompute uptime and trust from history, update the server.

Creates a scratch database on DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/postgres),
migrates it, lists SERVERS servers and gives each one 7 days of history at the default 5-minute
interval (2,016 rows each), then records PROBES more results, moving an injected clock 5 minutes
between rounds so the 7-day window stays full. Prints wall time and this process's CPU per record.

    python bench/record.py [--servers 50] [--probes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

# The checkout's package, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.probe.health import ProbeResult, ProbeTool, tools_fingerprint
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.repository import Repository, make_pool

STEP = timedelta(minutes=5)
WEEK_OF_PROBES = 7 * 24 * 12


async def _run(admin: str, servers: int, probes: int) -> None:
    name = f"mcpl_bench_record_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    try:
        await apply_migrations(url)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        ids: list[UUID] = []
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO domains (domain, verified) VALUES ('example.test', true)")
            for i in range(servers):
                row = conn.execute(
                    "INSERT INTO mcp_servers (name, domain, endpoint, transport, source, status, verified,"
                    " created_at, published_at) VALUES (%s, 'example.test', 'https://mcp.example.test/mcp',"
                    " 'streamable-http', 'register', 'active', true, %s, %s) RETURNING id",
                    (f"test.example/s{i}", start, start),
                ).fetchone()
                assert row is not None
                ids.append(row[0])
            # 7 days of history for every server, one row per 5 minutes, 1 in 20 down.
            conn.execute(
                "INSERT INTO health_checks (server_id, checked_at, status, is_up, latency_ms, trigger)"
                " SELECT s.id, %s + n * interval '5 minutes',"
                " CASE WHEN n %% 20 = 0 THEN 'unreachable' ELSE 'healthy' END, n %% 20 <> 0, 120, 'schedule'"
                " FROM mcp_servers s, generate_series(0, %s - 1) AS n",
                (start, WEEK_OF_PROBES),
            )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE health_checks")
            rows = conn.execute("SELECT count(*) FROM health_checks").fetchone()
        print(f"history: {rows[0] if rows else 0} rows over {servers} servers")

        clock = {"now": start + WEEK_OF_PROBES * STEP}
        pool = make_pool(url, 4)
        await pool.open(wait=True)
        monitor = HealthMonitor(
            Repository(pool),
            Settings(),
            make_resolver([], 1.0),
            RateLimiter(1000),
            clock=lambda: clock["now"],
        )
        tools = (ProbeTool("add", "Add two integers."), ProbeTool("echo", "Echo the text back."))
        result = ProbeResult(
            status="healthy",
            transport="streamable-http",
            latency_ms=100.0,
            protocol_version="2025-11-25",
            tools=tools,
            tools_fingerprint=tools_fingerprint(tools),
        )
        for server_id in ids:  # first sighting of the tool list writes it; later records do not
            await monitor.record(server_id, result)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        done = 0
        while done < probes:
            clock["now"] += STEP
            for server_id in ids[: probes - done]:
                await monitor.record(server_id, result)
                done += 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await pool.close()
        print(f"records {probes}, one at a time")
        print(f"wall per record: {wall * 1000 / probes:.2f} ms ({probes / wall:.0f} records/s)")
        print(
            f"this process's CPU per record: {cpu * 1000 / probes:.2f} ms (PostgreSQL's own CPU not included)"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--probes", type=int, default=2000)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(_run(admin, args.servers, args.probes))


if __name__ == "__main__":
    main()
