"""Health history at scale: uptime and latency read from hourly and daily roll-ups equal what the raw
probes say, whichever way the probes arrived (one by one through the monitor, or in bulk and rolled up
after); retention deletes old probes and roll-ups in bounded batches."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from conftest import Clock

from mcplookup_mcp.services import monitor as monitor_module
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.store.repository import Repository, make_pool

# The figures as computed from the raw probes alone (the health_stats of migration 0004): the oracle.
RAW_STATS = """
SELECT round((100.0 * count(*) FILTER (WHERE is_up AND checked_at > %(since_24h)s)
              / nullif(count(*) FILTER (WHERE checked_at > %(since_24h)s), 0))::numeric, 2)::float8,
       round((100.0 * count(*) FILTER (WHERE is_up) / nullif(count(*), 0))::numeric, 2)::float8,
       round(avg(latency_ms) FILTER (WHERE status IN ('healthy', 'degraded') AND latency_ms IS NOT NULL
                                       AND checked_at > %(since_24h)s)::numeric, 1)::float8,
       count(*) FILTER (WHERE checked_at > %(since_24h)s),
       count(*)
  FROM health_checks
 WHERE server_id = %(id)s AND checked_at > %(since_7d)s AND checked_at <= %(now)s
"""
FIELDS = ("uptime_24h", "uptime_7d", "avg_latency_ms", "checks_24h", "checks_7d")

SERVERS = """
INSERT INTO mcp_servers (name, description, source, status, endpoint, transport)
SELECT 'io.test/rollup-' || g, 'synthetic server ' || g, 'import', 'active',
       'https://s' || g || '.example.com/mcp', 'streamable-http'
  FROM generate_series(1, %(n)s) AS g
"""

# Probes every `step` minutes with a per-probe jitter of up to `step` - 1 minutes and some seconds, so
# probes fall anywhere in their hours; about one in seven is down, latencies only for healthy or degraded.
PROBES = """
INSERT INTO health_checks (server_id, checked_at, status, is_up, latency_ms)
SELECT s.id, p.at, p.status, p.status IN ('healthy', 'degraded', 'auth_required'),
       CASE WHEN p.status IN ('healthy', 'degraded', 'unhealthy') AND p.k %% 11 <> 0
            THEN 20 + (p.k * 37 + s.n) %% 900 END
  FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM mcp_servers) AS s,
       LATERAL (
           SELECT k, %(start)s::timestamptz + k * make_interval(mins => %(step)s)
                     + make_interval(secs => ((k * 7919 + s.n * 104729) %% (%(step)s * 60 - 1))) AS at,
                  (ARRAY['healthy', 'healthy', 'healthy', 'degraded', 'auth_required', 'unhealthy',
                         'unreachable'])[1 + (k + s.n) %% 7] AS status
             FROM generate_series(0, %(probes)s - 1) AS k
       ) AS p
"""


def load(db_url: str, servers: int, start: datetime, step_minutes: int, probes: int) -> list[UUID]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # This database is the test's alone and thrown away after: no WAL for millions of synthetic rows.
        conn.execute("ALTER TABLE health_checks SET UNLOGGED")
        conn.execute(SERVERS, {"n": servers})
        conn.execute(PROBES, {"start": start, "step": step_minutes, "probes": probes})
        conn.execute("ANALYZE health_checks")
        return [row[0] for row in conn.execute("SELECT id FROM mcp_servers ORDER BY name")]


def raw_stats(conn: psycopg.Connection[Any], server_id: UUID, now: datetime) -> dict[str, Any]:
    params = {
        "id": server_id,
        "now": now,
        "since_24h": now - timedelta(hours=24),
        "since_7d": now - timedelta(days=7),
    }
    row = conn.execute(RAW_STATS, params).fetchone()
    assert row is not None
    return dict(zip(FIELDS, row, strict=True))


async def rollup_stats(repo: Repository, server_id: UUID, now: datetime) -> dict[str, Any]:
    async with repo.read() as q:
        row = await q.health_stats(server_id, now)
    return {field: row[field] for field in FIELDS}


def instants(start: datetime) -> list[datetime]:
    """Moments to read the figures at: on an hour, on a day (UTC), a second either side, and odd ones."""
    day = (start + timedelta(days=7, hours=12)).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        day + timedelta(days=1),
        day + timedelta(days=1, seconds=1),
        day + timedelta(days=1) - timedelta(seconds=1),
        day + timedelta(hours=13),
        day + timedelta(hours=13, minutes=29, seconds=31, microseconds=5),
        day + timedelta(hours=23, minutes=59, seconds=59),
    ]


@pytest.mark.slow
async def test_uptime_from_roll_ups_equals_the_raw_probes_at_10k_servers_over_7_days(db_url: str) -> None:
    # 10k servers, 8 days of probes every hour at a different minute each (1.9M probes, one statement):
    # the figures' edges cut through hours with probes on both sides.
    start = datetime(2026, 3, 1, 0, 0, 17, tzinfo=UTC)
    ids = load(db_url, 10_000, start, 60, 8 * 24)
    assert len(ids) == 10_000
    repo = Repository(make_pool(db_url, 2))
    await repo.open()
    try:
        async with repo.transaction() as q:
            await q.rollup_health_range(start - timedelta(days=1), start + timedelta(days=9))
        with psycopg.connect(db_url) as conn:
            hourly, daily, raw = conn.execute(
                "SELECT (SELECT sum(checks) FROM health_hourly), (SELECT sum(checks) FROM health_daily), "
                "(SELECT count(*) FROM health_checks)"
            ).fetchone() or (0, 0, 0)
            assert hourly == daily == raw == 10_000 * 8 * 24
            sample = random.Random(31).sample(ids, 60)
            for now in instants(start):
                for server_id in sample:
                    expected = raw_stats(conn, server_id, now)
                    assert expected["checks_7d"] > 150  # a real week of history, not an empty window
                    assert await rollup_stats(repo, server_id, now) == expected, (server_id, now)
    finally:
        await repo.close()


async def test_probes_recorded_one_by_one_keep_the_roll_ups_exact(db_url: str, settings: Any) -> None:
    """Through the monitor's own insert: each probe lands in its hour and day at once."""
    ids = load(db_url, 3, datetime(2026, 3, 1, tzinfo=UTC), 60, 0)
    start = datetime(2026, 3, 1, 0, 0, 3, tzinfo=UTC)
    rng = random.Random(7)
    repo = Repository(make_pool(db_url, 2))
    await repo.open()
    try:
        async with repo.transaction() as q:
            for server_id in ids:
                at = start
                while at < start + timedelta(days=8):
                    status = rng.choice(["healthy", "degraded", "auth_required", "unhealthy", "unreachable"])
                    await q.insert_health_check(
                        _probe(server_id, at, status, rng.choice([None, rng.uniform(5, 3000)]))
                    )
                    at += timedelta(minutes=rng.randint(5, 95), seconds=rng.randint(0, 59))
        with psycopg.connect(db_url) as conn:
            for now in instants(start):
                for server_id in ids:
                    assert await rollup_stats(repo, server_id, now) == raw_stats(conn, server_id, now)
            # The same roll-ups as computing them again from the raw rows.
            before = conn.execute("SELECT * FROM health_hourly ORDER BY 1, 2").fetchall()
            assert before
        async with repo.transaction() as q:
            await q.rollup_health_range(start - timedelta(days=1), start + timedelta(days=10))
        with psycopg.connect(db_url) as conn:
            after = conn.execute("SELECT * FROM health_hourly ORDER BY 1, 2").fetchall()
        assert [r[:4] for r in after] == [r[:4] for r in before]
        assert all(abs(a[4] - b[4]) < 1e-6 and a[5] == b[5] for a, b in zip(after, before, strict=True))
    finally:
        await repo.close()


def _probe(server_id: UUID, at: datetime, status: str, latency: float | None) -> dict[str, Any]:
    return {
        "server_id": server_id,
        "checked_at": at,
        "status": status,
        "is_up": status in ("healthy", "degraded", "auth_required"),
        "latency_ms": latency,
        "http_status": None,
        "protocol_version": None,
        "server_name": None,
        "server_version": None,
        "error_class": None,
        "error": None,
        "tls_valid": None,
        "tools_fingerprint": None,
        "tools_changed": False,
        "trigger": "schedule",
    }


@pytest.mark.slow
async def test_retention_deletes_in_bounded_batches_and_keeps_the_figures(
    db_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = load(db_url, 5, start, 60, 420 * 24)  # 420 days of hourly probes
    now = start + timedelta(days=420)
    repo = Repository(make_pool(db_url, 2))
    await repo.open()
    try:
        async with repo.transaction() as q:
            await q.rollup_health_range(start, now + timedelta(days=1))
        with psycopg.connect(db_url) as conn:
            before = [await rollup_stats(repo, i, now) for i in ids]
            assert before == [raw_stats(conn, i, now) for i in ids]
        batches: list[int] = []
        real = Repository.transaction

        def counting(self: Repository) -> Any:
            batches.append(1)
            return real(self)

        monkeypatch.setattr(monitor_module, "PRUNE_BATCH", 500)
        monkeypatch.setattr(Repository, "transaction", counting)
        monitor = HealthMonitor(repo, settings, None, None, clock=Clock(now))  # type: ignore[arg-type]
        deleted = await monitor.prune()
        monkeypatch.setattr(Repository, "transaction", real)
        retention = timedelta(days=settings.health_retention_days)
        with psycopg.connect(db_url) as conn:
            oldest_raw, oldest_hour, oldest_day, raw_left = conn.execute(
                "SELECT (SELECT min(checked_at) FROM health_checks), (SELECT min(hour) FROM health_hourly), "
                "(SELECT min(day) FROM health_daily), (SELECT count(*) FROM health_checks)"
            ).fetchone() or (None, None, None, 0)
            assert deleted == 5 * 420 * 24 - raw_left
            assert oldest_raw >= now - retention
            assert oldest_hour >= now - monitor_module.HOURLY_KEPT
            assert oldest_day >= now - monitor_module.DAILY_KEPT
            # Each transaction deleted at most one batch: many short ones, no long lock.
            hourly_deleted = 5 * 420 * 24 - conn.execute("SELECT count(*) FROM health_hourly").fetchone()[0]  # type: ignore[index]
            assert len(batches) >= (deleted + hourly_deleted) // 500
            after = [await rollup_stats(repo, i, now) for i in ids]
            assert after == before == [raw_stats(conn, i, now) for i in ids]
    finally:
        await repo.close()


async def test_the_server_page_shows_uptime_by_day_and_its_chart_from_the_roll_ups(
    db_url: str, settings: Any, make_live: Any
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ids = load(db_url, 2, start, 60, 9 * 24)
    now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    repo = Repository(make_pool(db_url, 2))
    await repo.open()
    try:
        async with repo.transaction() as q:
            await q.rollup_health_range(start, now)
        monitor = HealthMonitor(repo, settings, None, None, clock=Clock(now))  # type: ignore[arg-type]
        with psycopg.connect(db_url) as conn:
            name = conn.execute("SELECT name FROM mcp_servers WHERE id = %s", (ids[0],)).fetchone()[0]  # type: ignore[index]
            expected = conn.execute(
                "SELECT date_trunc('day', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*), "
                "round((100.0 * count(*) FILTER (WHERE is_up) / count(*))::numeric, 2)::float8 "
                "FROM health_checks WHERE server_id = %s AND checked_at >= '2026-03-04' GROUP BY 1 ORDER BY 1",
                (ids[0],),
            ).fetchall()
            # The chart's slots from the raw probes: days up to yesterday (the 9th), then its hours.
            slots = conn.execute(
                "SELECT date_trunc(CASE WHEN checked_at >= '2026-03-09' THEN 'hour' ELSE 'day' END, "
                "checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*), count(*) FILTER (WHERE is_up), "
                "avg(latency_ms) FILTER (WHERE status IN ('healthy', 'degraded')) "
                "FROM health_checks WHERE server_id = %s AND checked_at >= '2026-03-04' GROUP BY 1 ORDER BY 1",
                (ids[0],),
            ).fetchall()
        result, spans = await monitor.get_health_with_timeline({"name": name}, client="test")
    finally:
        await repo.close()
    assert [(d.day, d.checks, d.uptime) for d in result.uptime_by_day] == expected
    assert len(expected) == 6  # 4 to 9 March: today (the 10th) has no probe yet
    assert [(s.start, s.checks, s.up_checks) for s in spans] == [row[:3] for row in slots]
    assert [s.hours for s in spans] == [24] * 5 + [1] * 24
    assert [s.latency_ms for s in spans] == pytest.approx([row[3] for row in slots])
    live = make_live(settings, clock=Clock(now))
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        page = (await http.get(f"/servers/{name}")).text
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>([\d.]+)%</td><td>(\d+)</td></tr>", page)
    assert rows == [(d.strftime("%Y-%m-%d"), f"{uptime:.1f}", str(checks)) for d, checks, uptime in expected]
    # The chart: one bar per slot, its tone by how many of the slot's probes were up.
    tones = re.findall(r'<rect class="probe (\w+)"', page)
    assert tones == ["ok" if up == n else "bad" if up == 0 else "warn" for _, n, up, _ in slots]
    checks, up = sum(row[1] for row in slots), sum(row[2] for row in slots)
    assert (
        f"{checks} probes from 2026-03-04 00:00 to 2026-03-10 00:00 UTC: {up} up, {checks - up} down" in page
    )
    assert "2026-03-09 13:00-14:00 UTC: " in page
