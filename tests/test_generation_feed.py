"""The discovery generation pushed to every process (store/generation_feed.py): a cached answer needs no
database statement, a write on one instance reaches another's cache by the notification, and a lost
listener, or a lost Redis, falls back to reading per request."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from conftest import dbname_of, open_service
from listing_support import add, sql
from prometheus_client import REGISTRY
from stack import RedisProcess

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.generation_feed import APPLICATION_NAME, GenerationFeed

# Longer than any test waits: what arrives in time was brought by a notification, not a periodic read.
REFRESH_SECONDS = 30.0


async def until(check: Callable[[], bool], seconds: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def started_feed(service: RegistryService, db_url: str) -> GenerationFeed:
    feed = GenerationFeed(db_url, REFRESH_SECONDS)
    service.repo.feed = feed
    feed.start()
    await until(lambda: feed.current() is not None)
    return feed


def checkouts(service: RegistryService) -> int:
    """Connections handed out by the service's pool: every statement it sends takes one."""
    return int(service.repo.pool.get_stats().get("requests_num", 0))


def generation_reads() -> float:
    return REGISTRY.get_sample_value("discovery_generation_reads_total") or 0.0


async def test_a_cached_answer_makes_no_database_statement(db_url: str, settings: Settings) -> None:
    service = await open_service(db_url, replace(settings, discover_cache_seconds=60))
    feed: GenerationFeed | None = None
    add(db_url, "io.example/mailer", description="Send email from your mailbox")
    ask = {"query": "send email"}
    try:
        # Without the feed, each cached answer still reads the generation: one statement.
        first = await service.discover(ask, transport="rest")
        before = checkouts(service)
        assert await service.discover(ask, transport="rest") is first
        assert checkouts(service) == before + 1

        feed = await started_feed(service, db_url)
        first = await service.discover(ask, transport="rest")
        before, reads = checkouts(service), generation_reads()
        for _ in range(20):
            assert await service.discover(ask, transport="rest") is first
        assert checkouts(service) == before and generation_reads() == reads

        # With no database connection left to this process at all, the cached answer is still served.
        await service.repo.pool.close()
        assert await service.discover(ask, transport="rest") is first
    finally:
        if feed is not None:
            await feed.stop()
        await service.repo.close()


async def test_a_write_through_this_process_is_in_its_next_answer(db_url: str, settings: Settings) -> None:
    service = await open_service(
        db_url, replace(settings, discover_cache_seconds=60, mock_dns_verification=True)
    )
    feed = await started_feed(service, db_url)
    ask = {"query": "otter river", "include_pending": True}
    try:
        assert (await service.discover(ask, transport="rest")).count == 0
        # register() commits a pending listing; the notification has not necessarily come back yet.
        await service.register(
            {
                "domain": "otter.example.test",
                "endpoint": "https://mcp.otter.example.test/mcp",
                "description": "otter sightings by river",
            },
            api_key=None,
            client="127.0.0.1",
        )
        assert (await service.discover(ask, transport="rest")).count == 1
    finally:
        await feed.stop()
        await service.repo.close()


@pytest.mark.slow
async def test_a_write_on_one_instance_reaches_the_others_cache_by_the_push(
    make_live: Any, settings: Settings
) -> None:
    both = replace(
        settings, discover_cache_seconds=60, discover_generation_refresh_ms=int(REFRESH_SECONDS * 1000)
    )
    one, other = make_live(both), make_live(both)
    ask = {"q": "otter river", "include_pending": "true"}
    async with (
        httpx.AsyncClient(base_url=one.base_url) as writer,
        httpx.AsyncClient(base_url=other.base_url) as reader,
    ):
        await until(lambda: (REGISTRY.get_sample_value("discovery_generation_push_up") or 0) == 1)
        assert (await reader.get("/api/v1/discover", params=ask)).json()["count"] == 0
        assert (await writer.get("/api/v1/discover", params=ask)).json()["count"] == 0
        hits, reads = (
            REGISTRY.get_sample_value("discover_cache_total", {"result": "hit"}) or 0,
            generation_reads(),
        )
        assert (await reader.get("/api/v1/discover", params=ask)).json()["count"] == 0
        assert REGISTRY.get_sample_value("discover_cache_total", {"result": "hit"}) == hits + 1

        claim = await writer.post(
            "/api/v1/register",
            json={
                "domain": "otter.example.test",
                "endpoint": "https://mcp.otter.example.test/mcp",
                "description": "otter sightings by river",
            },
        )
        assert claim.status_code == 202
        written = time.monotonic()
        # The writer's own next answer has it at once.
        assert (await writer.get("/api/v1/discover", params=ask)).json()["count"] == 1
        while (await reader.get("/api/v1/discover", params=ask)).json()["count"] != 1:
            assert time.monotonic() - written < 5, "the other instance never saw the write"
            await asyncio.sleep(0.01)
        # Far inside the 30 s periodic read: the notification brought it, and no answer read the generation.
        assert time.monotonic() - written < 5
        assert generation_reads() == reads


@pytest.mark.slow
async def test_a_killed_listener_falls_back_to_reading_and_comes_back(
    db_url: str, pg_admin_url: str, settings: Settings
) -> None:
    service = await open_service(db_url, replace(settings, discover_cache_seconds=60))
    feed = await started_feed(service, db_url)
    add(db_url, "io.example/mailer", description="Send email from your mailbox")
    ask = {"query": "send email"}
    name = dbname_of(db_url)
    try:
        first = await service.discover(ask, transport="rest")
        with (
            psycopg.connect(pg_admin_url, autocommit=True) as admin,
            psycopg.connect(db_url, autocommit=True) as elsewhere,
        ):
            # The listener cannot come back while the database refuses new connections.
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = %s AND datname = %s",
                    (APPLICATION_NAME, name),
                ).fetchone()
                assert killed == (1,)
                await until(lambda: feed.current() is None)
                # Each answer reads the generation again, so a write from elsewhere shows at once.
                reads = generation_reads()
                elsewhere.execute(
                    "UPDATE mcp_servers SET description = 'Send email and SMS' WHERE name = 'io.example/mailer'"
                )
                changed = await service.discover(ask, transport="rest")
                assert changed is not first and changed.servers[0].description == "Send email and SMS"
                assert generation_reads() == reads + 1
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # Back by itself, and cached answers are again served without a statement.
        await until(lambda: feed.current() is not None, seconds=15)
        cached = await service.discover(ask, transport="rest")
        before = checkouts(service)
        assert await service.discover(ask, transport="rest") is cached
        assert checkouts(service) == before
        # ...and the push carries the next write again.
        sql(
            db_url,
            "UPDATE mcp_servers SET description = 'Send email, SMS and fax' WHERE name = 'io.example/mailer'",
        )
        moved = feed.current()
        await until(lambda: feed.current() != moved)
        assert (await service.discover(ask, transport="rest")).servers[
            0
        ].description == "Send email, SMS and fax"
    finally:
        await feed.stop()
        await service.repo.close()


@pytest.mark.slow
async def test_with_redis_killed_answers_follow_writes_by_the_push(
    make_live: Any, settings: Settings, own_redis: RedisProcess
) -> None:
    shared = replace(
        settings,
        redis_url=own_redis.url,
        redis_prefix=f"test-{secrets.token_hex(4)}",
        discover_cache_seconds=60,
        discover_generation_refresh_ms=int(REFRESH_SECONDS * 1000),
    )
    one, other = make_live(shared), make_live(shared)
    ask = {"q": "otter river", "include_pending": "true"}

    def shared_count(result: str) -> float:
        return REGISTRY.get_sample_value("discover_shared_cache_total", {"result": result}) or 0.0

    async with (
        httpx.AsyncClient(base_url=one.base_url) as writer,
        httpx.AsyncClient(base_url=other.base_url) as reader,
    ):
        await until(lambda: (REGISTRY.get_sample_value("discovery_generation_push_up") or 0) == 1)
        assert (await writer.get("/api/v1/discover", params=ask)).json()["count"] == 0
        hits = shared_count("hit")
        assert (await reader.get("/api/v1/discover", params=ask)).json()["count"] == 0
        assert shared_count("hit") == hits + 1, "the other instance took the answer from Redis"

        own_redis.stop()
        unavailable = shared_count("unavailable")
        claim = await writer.post(
            "/api/v1/register",
            json={
                "domain": "otter.example.test",
                "endpoint": "https://mcp.otter.example.test/mcp",
                "description": "otter sightings by river",
            },
        )
        assert claim.status_code == 202
        written = time.monotonic()
        while (answer := await reader.get("/api/v1/discover", params=ask)).json()["count"] != 1:
            assert answer.status_code == 200
            assert time.monotonic() - written < 5, "the other instance never saw the write"
            await asyncio.sleep(0.01)
        assert shared_count("unavailable") > unavailable, "the answer was computed without Redis"


async def test_with_standbys_the_generation_is_read_with_its_wal_position(
    db_url: str, settings: Settings
) -> None:
    """A pushed generation carries no WAL position, which an answer computed on a standby must wait for:
    where standbys serve reads, every answer reads the generation with its position on the primary."""
    from mcplookup_mcp.store.repository import make_pool
    from mcplookup_mcp.store.standby import Standbys

    service = await open_service(db_url, replace(settings, discover_cache_seconds=60))
    feed = await started_feed(service, db_url)
    add(db_url, "io.example/mailer", description="Send email from your mailbox")
    ask = {"query": "send email"}
    try:
        assert service.repo.pushed_generation() is not None
        # A standby that answers nothing: it never enters the rotation, but it is configured.
        service.repo.standbys = Standbys(
            ("postgresql://postgres@127.0.0.1:1/none",), lambda url: make_pool(url, 1), 10.0
        )
        first = await service.discover(ask, transport="rest")
        reads = generation_reads()
        assert await service.discover(ask, transport="rest") is first
        assert generation_reads() == reads + 1
        generation, position = await service.discovery.current_generation()
        assert generation == service.repo.pushed_generation() and position > 0
    finally:
        service.repo.standbys = None
        await feed.stop()
        await service.repo.close()
