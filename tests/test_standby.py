"""Reads from a streaming standby (DATABASE_READ_URL): a real primary and a standby cloned from it with
pg_basebackup -R, the app in front of both. Discovery and the other public reads go to the standby; a
writer's next reads see its write; a standby that stops or falls behind leaves the rotation and comes
back, and no request fails meanwhile."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from conftest import LiveServer, free_port
from dnsserver import ThreadedDnsServer
from standby_pair import Pair, make_pair

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core.client_address import ORIGIN, Origin
from mcplookup_mcp.core.settings import ConfigError, Settings, load_settings
from mcplookup_mcp.services.read_your_writes import WriteMarks
from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.redis_store import RedisStore
from mcplookup_mcp.store.repository import Repository, lsn_value, make_pool
from mcplookup_mcp.store.standby import Standbys

DB = "mcplookup"
WRITER = {"X-Forwarded-For": "198.51.100.7"}
OTHER = {"X-Forwarded-For": "203.0.113.9"}


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    made = make_pair(free_port(), free_port())
    try:
        made.primary.sql(f"CREATE DATABASE {DB}")
        asyncio.run(apply_migrations(made.primary.url(DB)))
        made.wait_replayed()
        yield made
    finally:
        made.close()


def standby_label(pair: Pair) -> str:
    return f"127.0.0.1:{pair.standby.port}/{DB}"


@pytest.fixture
def app_for(pair: Pair, settings: Settings) -> Iterator[Any]:
    started: list[LiveServer] = []

    def start(max_lag: float = 60.0) -> LiveServer:
        app_settings = replace(
            settings,
            database_read_urls=(pair.standby.url(DB),),
            read_max_lag_seconds=max_lag,
            # The test's clients speak for themselves through X-Forwarded-For.
            trusted_proxies=("127.0.0.1",),
        )
        live = LiveServer(create_app(app_settings, pair.primary.url(DB))).start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
async def http(app_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    live = app_for()
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as client:
        yield client


async def metric(http: httpx.AsyncClient, name: str, label: str) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(rf'^{name}{{[a-z]+="{re.escape(label)}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def until(check: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def in_rotation(http: httpx.AsyncClient, pair: Pair) -> bool:
    return await metric(http, "db_standby_in_rotation", standby_label(pair)) == 1.0


def searches_seen_on(server: Any) -> int:
    """Sessions of `server` whose last statement was discovery's ranked search (pg_stat_activity keeps
    an idle session's last statement)."""
    rows = server.sql(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' "
        "AND query LIKE '%Filler: stemmed words%'"
    )
    return int(rows[0][0])  # type: ignore[call-overload]


async def register_and_verify(http: httpx.AsyncClient, dns: ThreadedDnsServer, domain: str) -> str:
    listing = {
        "domain": domain,
        "slug": "mail",
        "endpoint": f"https://mcp.{domain}/mcp",
        "description": "Send, search and read email in your mailbox",
        "capabilities": ["email"],
    }
    claim = (await http.post("/api/v1/register", json=listing, headers=WRITER)).json()
    dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
    verified = await http.post(
        "/api/v1/verify",
        json={"domain": domain, "registration_id": claim["registration_id"]},
        headers=WRITER,
    )
    assert verified.json()["verified"] is True, verified.text
    return str(verified.json()["name"])


async def listed_names(http: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    response = await http.get("/v0.1/servers", headers=headers)
    assert response.status_code == 200, response.text
    return {entry["server"]["name"] for entry in response.json()["servers"]}


@pytest.mark.slow
async def test_discovery_is_read_on_the_standby_and_a_writer_sees_its_write_at_once(
    http: httpx.AsyncClient, pair: Pair, dns: ThreadedDnsServer
) -> None:
    await until(lambda: in_rotation(http, pair))
    response = await http.get("/api/v1/discover", params={"q": "email"}, headers=OTHER)
    assert response.status_code == 200
    assert searches_seen_on(pair.standby) == 1, "the search did not run on the standby"
    assert searches_seen_on(pair.primary) == 0
    assert await metric(http, "db_public_reads_total", standby_label(pair)) >= 1

    # The standby replays nothing from here on: whatever reads see of the write below, they saw on
    # the primary.
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        name = await register_and_verify(http, dns, "first.test")
        # The writer, at once: its server, its listing in /v0.1, and discovery.
        page = await http.get(f"/api/v1/servers/{name}", headers=WRITER)
        assert page.status_code == 200 and page.json()["server"]["name"] == name
        assert name in await listed_names(http, WRITER)
        found = await http.get("/api/v1/discover", params={"q": "mailbox"}, headers=WRITER)
        assert name in [s["name"] for s in found.json()["servers"]]
        # Anyone asking about that domain reads the primary too: the owner on another device.
        assert (await http.get(f"/api/v1/servers/{name}", headers=OTHER)).status_code == 200
        # Another client's /v0.1 page is the standby's, which has not seen the write yet.
        assert name not in await listed_names(http, OTHER)
        # Discovery's caches stay exact: the write moved the generation, which the standby has not
        # replayed, so another client's search (a question not asked before) is not computed there and
        # cached as the new generation's answer.
        for _ in range(2):
            found = await http.get("/api/v1/discover", params={"q": "send email"}, headers=OTHER)
            assert name in [s["name"] for s in found.json()["servers"]]
    finally:
        pair.standby.sql("SELECT pg_wal_replay_resume()")
    pair.wait_replayed()
    assert name in await listed_names(http, OTHER)


@pytest.mark.slow
async def test_a_stopped_standby_fails_no_request_and_serves_again_once_started(
    http: httpx.AsyncClient, pair: Pair
) -> None:
    await until(lambda: in_rotation(http, pair))
    statuses: list[int] = []
    stop = asyncio.Event()

    async def reader(n: int) -> None:
        paths = ["/api/v1/discover?q=email", "/v0.1/servers", "/api/v1/capabilities", "/"]
        while not stop.is_set():
            response = await http.get(paths[n % len(paths)], headers={"X-Forwarded-For": f"192.0.2.{n}"})
            statuses.append(response.status_code)
            n += 1

    readers = [asyncio.create_task(reader(n)) for n in range(4)]
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(pair.standby.stop)
        await until(lambda: _not(in_rotation(http, pair)))
        served_during = len(statuses)
        await asyncio.sleep(1.5)
        primary_before = await metric(http, "db_public_reads_total", "primary")
        await asyncio.sleep(0.5)
        assert await metric(http, "db_public_reads_total", "primary") > primary_before
        await asyncio.to_thread(pair.standby.start)
        await until(lambda: in_rotation(http, pair))
        standby_before = await metric(http, "db_public_reads_total", standby_label(pair))
        await asyncio.sleep(1.0)
        assert await metric(http, "db_public_reads_total", standby_label(pair)) > standby_before
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert len(statuses) > served_during > 0
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


async def _not(check: Any) -> bool:
    return not await check


@pytest.mark.slow
async def test_replay_paused_past_the_lag_bound_moves_reads_to_the_primary_and_back(
    app_for: Any, pair: Pair
) -> None:
    live = app_for(max_lag=1.0)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        await until(lambda: in_rotation(http, pair))
        pair.standby.sql("SELECT pg_wal_replay_pause()")
        try:
            # Replay is paused, so a write on the primary leaves the standby behind, more every second.
            pair.primary.sql("CREATE TABLE lag_marker (n int); INSERT INTO lag_marker VALUES (1)", DB)
            await until(lambda: _not(in_rotation(http, pair)))
            assert await metric(http, "db_standby_lag_seconds", standby_label(pair)) > 1.0
            ready = await http.get("/ready")
            assert ready.status_code == 200, "the primary answers: still ready"
            primary_before = await metric(http, "db_public_reads_total", "primary")
            standby_before = await metric(http, "db_public_reads_total", standby_label(pair))
            for _ in range(3):
                assert (await http.get("/v0.1/servers", headers=OTHER)).status_code == 200
            assert await metric(http, "db_public_reads_total", "primary") == primary_before + 3
            assert await metric(http, "db_public_reads_total", standby_label(pair)) == standby_before
        finally:
            pair.standby.sql("SELECT pg_wal_replay_resume()")
            pair.primary.sql("DROP TABLE IF EXISTS lag_marker", DB)
        await until(lambda: in_rotation(http, pair))
        assert await metric(http, "db_standby_lag_seconds", standby_label(pair)) <= 1.0
        standby_before = await metric(http, "db_public_reads_total", standby_label(pair))
        assert (await http.get("/v0.1/servers", headers=OTHER)).status_code == 200
        assert await metric(http, "db_public_reads_total", standby_label(pair)) == standby_before + 1


def test_read_urls_are_comma_separated_and_checked() -> None:
    env = {"DATABASE_READ_URL": "postgresql://a:5432/x, postgresql://b:5432/x"}
    assert load_settings(env).database_read_urls == ("postgresql://a:5432/x", "postgresql://b:5432/x")
    assert load_settings({}).database_read_urls == ()
    with pytest.raises(ConfigError, match="DATABASE_READ_URL must be a URL"):
        load_settings({"DATABASE_READ_URL": "postgresql://a/x,mysql://b/x"})
    with pytest.raises(ConfigError, match="DATABASE_READ_URL names the same standby twice"):
        load_settings({"DATABASE_READ_URL": "postgresql://a/x,postgresql://a/x"})
    with pytest.raises(ConfigError, match="MCPLOOKUP_READ_MAX_LAG_SECONDS"):
        load_settings({"MCPLOOKUP_READ_MAX_LAG_SECONDS": "soon"})


def test_wal_positions_compare_as_numbers() -> None:
    assert lsn_value("0/16B3748") < lsn_value("0/16B3750") < lsn_value("1/0")
    assert lsn_value("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert lsn_value(None) == 0


async def test_a_write_on_one_replica_is_known_to_the_next_through_redis(pair: Pair, redis_url: str) -> None:
    def repository() -> Repository:
        standbys = Standbys((pair.standby.url(DB),), lambda url: make_pool(url, 1), 10.0)
        return Repository(make_pool(pair.primary.url(DB), 1), standbys)

    prefix = f"mcpl-test-marks-{os.getpid()}-{time.monotonic_ns()}"
    repos = [repository(), repository()]
    stores = [RedisStore(redis_url, prefix) for _ in repos]
    writer, reader = (WriteMarks(repo, store) for repo, store in zip(repos, stores, strict=True))
    for repo in repos:
        await repo.open()
    try:
        token = ORIGIN.set(Origin("198.51.100.7"))
        try:
            await writer.wrote("marks.test")
            written = await reader.floor()
        finally:
            ORIGIN.reset(token)
        assert written > 0
        assert written <= await repos[0].wal_position()
        # Another client knows nothing of it, unless it reads about the domain written.
        token = ORIGIN.set(Origin("203.0.113.9"))
        try:
            assert await reader.floor() == 0
            assert await reader.floor("marks.test") == written
        finally:
            ORIGIN.reset(token)
    finally:
        for repo in repos:
            await repo.close()
        for store in stores:
            await store.close()


async def test_lag_is_the_time_since_the_first_check_whose_wal_end_is_not_replayed() -> None:
    now = [100.0]
    standbys = Standbys((), lambda url: make_pool(url, 1), 10.0, clock=lambda: now[0])
    for position in (1000, 1000, 1000):  # a quiet primary, checked every second
        await standbys.check(position)
        now[0] += 1.0
    # A write after the quiet: a standby a moment behind is not behind by the quiet's length.
    await standbys.check(1500)
    assert standbys._lag(1000, since_last_replay=16.0) == 0.0
    # Replay stopped at 1000 while the primary kept writing: the lag grows from the first unreplayed check.
    for position in (2000, 3000, 4000):
        now[0] += 1.0
        await standbys.check(position)
    assert standbys._lag(1000, since_last_replay=19.0) == 3.0
    assert standbys._lag(2500, since_last_replay=0.1) == 1.0
    # Behind every check kept (or at the first check): the last replayed commit says how far.
    fresh = Standbys((), lambda url: make_pool(url, 1), 10.0, clock=lambda: now[0])
    await fresh.check(5000)
    assert fresh._lag(4000, since_last_replay=16.0) == 16.0
    assert fresh._lag(4000, since_last_replay=None) == float("inf")
