"""Health history at scale: table sizes and get_server_health's time, before and after the roll-ups.

For each SERVERS,STEP pair: a scratch database on DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432/postgres), migrated; SERVERS listed servers with 7 days of probes
every STEP minutes (jittered within the step, one INSERT ... SELECT generate_series; health_checks is made
UNLOGGED for the load, which changes its size on disk not at all) and vacuumed, as autovacuum would.
Then, for READS random servers:
- before: the figures as migration 0004 computed them, from the raw probes alone;
- the roll-ups as first read: one statement whose OR of ranges became bitmap scans, on today's indexes;
- after: the figures from the roll-ups (repository.health_stats), and the whole get_server_health
  (HealthMonitor.get_health: the server, its last 20 probes, the days, the figures) and the server
  page's read (get_health_with_timeline: the same and the chart's roll-ups).
The roll-ups are vacuumed after they are computed, as autovacuum keeps them (their settings: after 2%
of their rows changed). Prints the sizes (table plus indexes) and the median and p95 of each read in
milliseconds; with --explain, EXPLAIN (ANALYZE, BUFFERS) of each statement get_server_health runs, for
one random server, on the plan the app uses for it (generic for health_stats, custom for the others).
With --keep NAME the loaded database stays (and is reused by the next run with the same --keep).

    python bench/health_history.py [--runs 10,5 10,30 10000,30] [--reads 300] [--explain] [--keep NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

# The checkout's package, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.monitor import HISTORY_LIMIT, HealthMonitor
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.repository import Repository, _health_windows, make_pool
from mcplookup_mcp.store.sqlfiles import positional_queries

SERVERS = """
INSERT INTO mcp_servers (name, description, source, status, endpoint, transport)
SELECT 'io.bench/history-' || g, 'synthetic server ' || g, 'import', 'active',
       'https://s' || g || '.example.com/mcp', 'streamable-http'
  FROM generate_series(1, %(n)s) AS g
"""
PROBES = """
INSERT INTO health_checks (server_id, checked_at, status, is_up, latency_ms)
SELECT s.id, p.at, p.status, p.status IN ('healthy', 'degraded', 'auth_required'),
       CASE WHEN p.status IN ('healthy', 'degraded') THEN 20 + (p.k * 37 + s.n) %% 900 END
  FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM mcp_servers) AS s,
       LATERAL (
           SELECT k, %(start)s::timestamptz + k * make_interval(mins => %(step)s)
                     + make_interval(secs => ((k * 7919 + s.n * 104729) %% (%(step)s * 60 - 1))) AS at,
                  (ARRAY['healthy', 'healthy', 'healthy', 'healthy', 'degraded', 'auth_required',
                         'unreachable'])[1 + (k + s.n) %% 7] AS status
             FROM generate_series(0, %(probes)s - 1) AS k
       ) AS p
"""
# health_stats as migration 0004 shipped it: every probe of the week, read from health_checks.
RAW_STATS = """
SELECT round((100.0 * count(*) FILTER (WHERE is_up AND checked_at > %(since_24h)s)
              / nullif(count(*) FILTER (WHERE checked_at > %(since_24h)s), 0))::numeric, 2)::float8,
       round((100.0 * count(*) FILTER (WHERE is_up) / nullif(count(*), 0))::numeric, 2)::float8,
       round(avg(latency_ms) FILTER (WHERE status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL
                                       AND checked_at > %(since_24h)s)::numeric, 1)::float8,
       count(*) FILTER (WHERE checked_at > %(since_24h)s), count(*)
  FROM health_checks
 WHERE server_id = %(id)s AND checked_at > %(since_7d)s AND checked_at <= %(now)s
"""
# health_stats as the roll-ups were first read: the three raw ranges and the two hourly ones each in one
# OR (bitmap scans: a heap page per row).
FIRST_ROLLUP_STATS = """
WITH parts AS (
    SELECT checked_at > %(since_24h)s AS in_24h,
           checked_at < %(h7)s OR checked_at >= %(h_now)s AS in_7d,
           1 AS checks, is_up::int AS up_checks,
           CASE WHEN status IN ('healthy', 'degraded') THEN latency_ms END AS latency_sum_ms,
           (status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL)::int AS latency_checks
      FROM health_checks
     WHERE server_id = %(id)s
       AND ((checked_at > %(since_7d)s AND checked_at < %(h7)s)
            OR (checked_at > %(since_24h)s AND checked_at < %(h24)s)
            OR (checked_at >= %(h_now)s AND checked_at <= %(now)s))
    UNION ALL
    SELECT hour >= %(h24)s, hour < %(d7)s OR hour >= %(d_now)s,
           checks, up_checks, latency_sum_ms, latency_checks
      FROM health_hourly
     WHERE server_id = %(id)s
       AND ((hour >= %(h7)s AND hour < %(d7)s) OR (hour >= %(h24)s AND hour < %(h_now)s))
    UNION ALL
    SELECT false, true, checks, up_checks, latency_sum_ms, latency_checks
      FROM health_daily
     WHERE server_id = %(id)s AND day >= %(d7)s AND day < %(d_now)s
)
SELECT sum(up_checks) FILTER (WHERE in_24h), sum(checks) FILTER (WHERE in_24h),
       sum(up_checks) FILTER (WHERE in_7d), sum(checks) FILTER (WHERE in_7d),
       sum(latency_sum_ms) FILTER (WHERE in_24h), sum(latency_checks) FILTER (WHERE in_24h)
  FROM parts
"""
SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
  FROM pg_class c
 WHERE c.relname IN ('health_checks', 'health_hourly', 'health_daily')
 ORDER BY 1
"""


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms  p95 {p95 * 1000:7.3f} ms"


def _sizes(conn: psycopg.Connection[Any]) -> str:
    conn.execute("ANALYZE health_checks, health_hourly, health_daily")
    return ", ".join(
        f"{name} {size / 2**20:,.1f} MiB ({rows:,} rows)" for name, size, rows in conn.execute(SIZES)
    )


def _explain(url: str, server_id: Any, name: str, now: datetime) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement get_server_health runs, on the plan the app runs it
    on: the second execution, so planning and first reads of catalogs are not in it."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    statements = [
        ("get_health_servers", {"name": name, "domain": None}, "custom"),
        ("recent_health_checks", {"id": server_id, "limit": HISTORY_LIMIT}, "custom"),
        ("daily_uptime", {"id": server_id, "since": today - timedelta(days=6)}, "custom"),
        (
            "health_timeline",
            {"id": server_id, "since": today - timedelta(days=6), "hourly_from": today - timedelta(days=1)},
            "custom",
        ),
        ("health_stats", {"id": server_id, "now": now, **_health_windows(now)}, "generic"),
    ]
    named = positional_queries()
    with psycopg.connect(url, autocommit=True) as conn:
        for query_name, params, mode in statements:
            query, names = named[query_name]
            values = ", ".join(sql.Literal(params[n]).as_string(conn) for n in names)
            conn.execute(f"SET plan_cache_mode = force_{mode}_plan")
            conn.execute(b"PREPARE s AS " + query)
            for _ in range(2):
                plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE s({values})").fetchall()
            conn.execute("DEALLOCATE s")
            print(f"  -- {query_name} ({mode} plan)")
            for (line,) in plan:
                print(f"     {line}")


def _load(url: str, servers: int, start: datetime, step: int, probes: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE health_checks SET UNLOGGED")
        conn.execute(SERVERS, {"n": servers})
        began = time.perf_counter()
        conn.execute(PROBES, {"start": start, "step": step, "probes": probes})
        loaded = time.perf_counter() - began
        # As autovacuum leaves this insert-only table: the raw figures then read the covering index
        # only (docs/health.md), the fairest "before".
        conn.execute("VACUUM (ANALYZE) health_checks")
    print(
        f"{servers:,} servers, a probe every {step} min for 7 days ({probes:,} each): loaded in {loaded:.0f} s"
    )


async def _timed(repo: Repository, sample: list[Any], statement: str, params: dict[str, Any]) -> list[float]:
    """Each read through the app's own pool, so on its connection settings (a plan for each statement)."""
    taken: list[float] = []
    for server_id in sample:
        began = time.perf_counter()
        async with repo.pool.connection() as conn:
            await (await conn.execute(statement, params | {"id": server_id})).fetchone()
        taken.append(time.perf_counter() - began)
    return taken


async def _run(admin: str, servers: int, step: int, reads: int, explain: bool, keep: str | None) -> None:
    name = keep or f"mcpl_bench_history_{os.getpid()}"
    now = datetime(2026, 3, 8, 13, 29, 31, tzinfo=UTC)
    start = now - timedelta(days=7, hours=1)
    probes = (7 * 24 + 1) * 60 // step
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and keep:
            with psycopg.connect(url) as kept:
                reuse = kept.execute("SELECT count(*) FROM mcp_servers").fetchone() == (servers,)
        else:
            reuse = False
        if not reuse:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        await apply_migrations(url)
        if reuse:
            print(f"{servers:,} servers, a probe every {step} min for 7 days: database {name} reused")
        else:
            _load(url, servers, start, step, probes)
        with psycopg.connect(url, autocommit=True) as conn:
            print(f"  sizes before: {_sizes(conn)}")
            ids = [row[0] for row in conn.execute("SELECT id FROM mcp_servers")]
            names = dict(conn.execute("SELECT id, name FROM mcp_servers").fetchall())
        sample = [random.Random(i).choice(ids) for i in range(reads)]
        params = {"now": now, "since_24h": now - timedelta(hours=24), "since_7d": now - timedelta(days=7)}
        repo = Repository(make_pool(url, 2))
        await repo.open()
        try:
            before = await _timed(repo, sample, RAW_STATS, params)
            if not reuse:
                began = time.perf_counter()
                async with repo.transaction() as q:
                    await q.rollup_health_range(start - timedelta(days=1), now + timedelta(days=1))
                print(f"  rolled up in {time.perf_counter() - began:.0f} s")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) health_hourly, health_daily")
                print(f"  sizes after:  {_sizes(conn)}")
            monitor = HealthMonitor(
                repo, Settings(), make_resolver([], 1.0), RateLimiter(1000), clock=lambda: now
            )
            windows = params | _health_windows(now)
            first: list[float] = []
            after: list[float] = []
            whole: list[float] = []
            page: list[float] = []
            # The four reads of one server one after the other, server by server: whatever else loads
            # the machine meanwhile weighs on all four alike, so their ratios hold within the run.
            for server_id in sample:
                began = time.perf_counter()
                async with repo.read(kept_plans=True) as q:  # as health_stats was read
                    await (await q.conn.execute(FIRST_ROLLUP_STATS, windows | {"id": server_id})).fetchone()
                first.append(time.perf_counter() - began)
                began = time.perf_counter()
                async with repo.read(kept_plans=True) as q:  # as HealthMonitor.get_health reads it
                    await q.health_stats(server_id, now)
                after.append(time.perf_counter() - began)
                began = time.perf_counter()
                await monitor.get_health({"name": names[server_id]}, client="bench")
                whole.append(time.perf_counter() - began)
                began = time.perf_counter()
                await monitor.get_health_with_timeline({"name": names[server_id]}, client="bench")
                page.append(time.perf_counter() - began)
        finally:
            await repo.close()
        print(f"  figures from raw probes (before):      {_ms(before)}")
        print(f"  figures from roll-ups, one OR (first): {_ms(first)}")
        print(f"  figures from roll-ups (now):           {_ms(after)}")
        print(
            f"  now / first, medians: {statistics.median(after) / statistics.median(first):.2f}; "
            f"now / raw: {statistics.median(after) / statistics.median(before):.2f}"
        )
        print(f"  get_server_health, whole (now):        {_ms(whole)}")
        print(f"  the same with the page's chart (now):  {_ms(page)}")
        if explain:
            _explain(url, sample[0], names[sample[0]], now)
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", nargs="+", default=["10,5", "10,30", "10000,30"], help="SERVERS,STEP_MINUTES"
    )
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) of each statement")
    parser.add_argument("--keep", help="keep the loaded database under this name (one run only)")
    args = parser.parse_args()
    if args.keep and len(args.runs) > 1:
        parser.error("--keep names one database: give one run")
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    for run in args.runs:
        servers, step = (int(part) for part in run.split(","))
        asyncio.run(_run(admin, servers, step, args.reads, args.explain, args.keep))


if __name__ == "__main__":
    main()
