"""Discovery analytics: batched off the request path, flushed at shutdown, bounded, pruned, reported."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx
import psycopg
from conftest import LiveServer, mcp_client
from dnsserver import ThreadedDnsServer

from mcplookup_mcp.core import request_context
from mcplookup_mcp.core.metrics import ANALYTICS_DROPPED
from mcplookup_mcp.services.analytics import EventBuffer, client_network, prune_events
from mcplookup_mcp.services.service import RegistryService

LISTING = {
    "domain": "example.test",
    "slug": "mail",
    "endpoint": "https://mcp.example.test/mcp",
    "description": "Send, search and read email in your mailbox",
    "capabilities": ["email", "search"],
}


def rows(db_url: str, where: str = "true") -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT event_type, outcome, transport, query, capabilities, domain, user_agent, client_network"
            f" FROM discovery_events WHERE {where} ORDER BY id"
        ).fetchall()


def test_client_addresses_are_kept_as_their_network_only() -> None:
    assert client_network("203.0.113.77") == "203.0.113.0/24"
    assert client_network("2001:db8:1234:5678::9") == "2001:db8:1234::/48"
    assert client_network("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert client_network("mcp") is None and client_network(None) is None


async def test_events_are_written_after_the_interval_not_by_the_call(
    service: RegistryService, db_url: str
) -> None:
    events = EventBuffer(service.repo, flush_seconds=0.3)
    writer = asyncio.create_task(events.run())
    try:
        token = request_context.begin(
            request_context.RequestInfo("r1", transport="mcp", client="198.51.100.23", user_agent="agent/1.0")
        )
        try:
            events.record(
                "discover", started=time.perf_counter(), query="  Read  MY Mail ", capabilities=["email"]
            )
        finally:
            request_context.end(token)
        # Recording did no I/O: nothing is stored yet.
        assert rows(db_url) == [] and len(events) == 1
        for _ in range(40):
            if rows(db_url):
                break
            await asyncio.sleep(0.1)
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    assert rows(db_url) == [
        ("discover", "ok", "mcp", "read my mail", ["email"], None, "agent/1.0", "198.51.100.0/24")
    ]


async def test_a_full_buffer_drops_and_counts(service: RegistryService, db_url: str) -> None:
    events = EventBuffer(service.repo, capacity=3)
    dropped = ANALYTICS_DROPPED.labels(reason="buffer_full")
    before = dropped._value.get()
    for _ in range(5):
        events.record("get", started=time.perf_counter(), transport="rest")
    assert len(events) == 3
    assert dropped._value.get() - before == 2
    assert await events.flush() == 3
    assert len(rows(db_url)) == 3 and len(events) == 0


async def test_shutdown_flushes_what_the_writer_had_not_written(
    make_live: Callable[..., LiveServer], db_url: str
) -> None:
    live = make_live()
    # The writer would wait an hour: only the shutdown's flush can store these.
    live.app.state.service.discovery.events.flush_seconds = 3600.0
    async with httpx.AsyncClient(base_url=live.base_url, headers={"User-Agent": "probe-agent/2"}) as http:
        for q in ("mail", "calendar"):
            assert (
                await http.get("/api/v1/discover", params={"q": q, "capability": "email"})
            ).status_code == 200
        assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 404
    await asyncio.sleep(0.5)
    assert rows(db_url) == []
    live.stop()
    stored = rows(db_url)
    assert [(r[0], r[1], r[2], r[3], r[4], r[6], r[7]) for r in stored] == [
        ("discover", "ok", "rest", "mail", ["email"], "probe-agent/2", "127.0.0.0/24"),
        ("discover", "ok", "rest", "calendar", ["email"], "probe-agent/2", "127.0.0.0/24"),
        ("get", "not-found", "rest", None, [], "probe-agent/2", "127.0.0.0/24"),
    ]
    assert stored[2][5] == "example.test"


async def test_stats_report_top_queries_capabilities_periods_and_verification_rate(
    live: LiveServer, http: httpx.AsyncClient, dns: ThreadedDnsServer, db_url: str
) -> None:
    claim = (await http.post("/api/v1/register", json=LISTING)).json()
    verify = {"domain": "example.test", "registration_id": claim["registration_id"]}
    assert (await http.post("/api/v1/verify", json=verify)).json()["verified"] is False
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    assert (await http.post("/api/v1/verify", json=verify)).json()["verified"] is True
    for q in ("Mail", "mail", "calendar"):
        await http.get("/api/v1/discover", params={"q": q, "capability": "email"})
    async with mcp_client(live.base_url) as client:
        await client.call_tool("discover_servers", {"query": "mail", "capabilities": ["search"]})
        await client.call_tool("get_server", {"name": "test.example/mail"})
        stats = (await client.call_tool("get_discovery_stats", {})).structured_content
    assert stats is not None
    assert stats["top_queries_7d"][:2] == [{"value": "mail", "count": 3}, {"value": "calendar", "count": 1}]
    assert stats["top_capabilities_7d"] == [{"value": "email", "count": 3}, {"value": "search", "count": 1}]
    assert stats["events"]["discover"] == {"last_hour": 4, "last_24h": 4, "last_7d": 4, "last_30d": 4}
    assert stats["events"]["register"]["last_hour"] == 1 and stats["events"]["get"]["last_hour"] == 1
    assert stats["events"]["verify"]["last_30d"] == 2
    assert stats["verification_success_rate_30d"] == 0.5
    assert [r[2] for r in rows(db_url, "event_type = 'discover'")] == ["rest", "rest", "rest", "mcp"]


async def test_retention_prunes_old_events_only(service: RegistryService, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO discovery_events (transport, result_count, duration_ms, created_at) VALUES"
            " ('rest', 1, 1.0, now() - interval '100 days'), ('rest', 1, 1.0, now() - interval '10 days'),"
            " ('mcp', 1, 1.0, now())"
        )
    assert await prune_events(service.repo, retention_days=30) == 1
    assert len(rows(db_url)) == 2


async def test_every_batch_lands_whatever_its_text_holds(service: RegistryService, db_url: str) -> None:
    events = EventBuffer(service.repo, batch=4)
    # COPY's text format gives tab, newline and backslash a meaning: each must arrive as sent.
    hostile = 'mail\tfrom "me"\\n\nto {you}, NULL \\N é'
    token = request_context.begin(
        request_context.RequestInfo("r1", transport="rest", client="2001:db8:5::1", user_agent=hostile)
    )
    try:
        for n in range(10):
            events.record(
                "discover", started=time.perf_counter(), query=f"{hostile} {n}", capabilities=["a", "b"]
            )
        events.record("get", started=time.perf_counter(), domain="example.test")
    finally:
        request_context.end(token)
    assert await events.flush() == 11
    stored = rows(db_url)
    assert len(stored) == 11
    normalised = " ".join(hostile.lower().split())
    assert stored[0] == (
        "discover",
        "ok",
        "rest",
        f"{normalised} 0",
        ["a", "b"],
        None,
        hostile,
        "2001:db8:5::/48",
    )
    assert [r[3] for r in stored[:10]] == [f"{normalised} {n}" for n in range(10)]
    assert stored[10] == ("get", "ok", "rest", None, [], "example.test", hostile, "2001:db8:5::/48")


async def test_a_database_outage_costs_events_not_calls(db_url: str) -> None:
    from conftest import free_port

    from mcplookup_mcp.store.repository import Repository, make_pool

    # A database that never answers: each write waits the pool's timeout, then fails.
    pool = make_pool(f"host=127.0.0.1 port={free_port()} dbname=none user=none", 2, timeout=1.0)
    await pool.open(wait=False)
    events = EventBuffer(Repository(pool), capacity=5, batch=2, flush_seconds=0.05)
    writer = asyncio.create_task(events.run())
    failed = ANALYTICS_DROPPED.labels(reason="write_failed")
    full = ANALYTICS_DROPPED.labels(reason="buffer_full")
    failed_before, full_before = failed._value.get(), full._value.get()

    async def call() -> str:
        return "answer"

    try:
        for _ in range(2):
            await events.track("get", None, call)
        for _ in range(50):
            if events._flushing.locked():
                break
            await asyncio.sleep(0.02)
        # The writer is stuck waiting for the database; calls still answer at once and are noted.
        assert events._flushing.locked()
        answers = [await events.track("get", None, call) for _ in range(8)]
        assert answers == ["answer"] * 8
        assert events._flushing.locked(), "the calls did not wait for the writer"
        # The writer holds the first two; of the eight more, the buffer keeps five and drops three.
        assert len(events) == 5 and full._value.get() - full_before == 3
        for _ in range(100):
            if failed._value.get() - failed_before >= 2:
                break
            await asyncio.sleep(0.05)
        assert failed._value.get() - failed_before >= 2
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await pool.close()
