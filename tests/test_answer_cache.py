"""Each replica's cache of discovery answers: reused while no listing has changed, dropped the moment one
is written, by this replica or any other; what the prober writes shows once an answer is computed again
after its TTL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from conftest import open_service
from hand_driven import HandDriven
from listing_support import SEED, add, sql
from prometheus_client import REGISTRY

from mcplookup_mcp.core.settings import Settings, load_settings
from mcplookup_mcp.services.answer_cache import AnswerCache
from mcplookup_mcp.services.importer import Importer, entries_of
from mcplookup_mcp.services.service import RegistryService, utcnow


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_fresh_for_one_ttl_then_stale_for_another_then_gone() -> None:
    ticks = Ticks()
    cache: AnswerCache[str] = AnswerCache(ttl=10, entries=2, clock=ticks)
    assert cache.get("q", 1) is None
    cache.put("q", 1, "answer")
    assert cache.get("q", 1) == ("answer", True)
    ticks.now += 9.9
    assert cache.get("q", 1) == ("answer", True)
    ticks.now += 0.1
    assert cache.get("q", 1) == ("answer", False)
    ticks.now += 9.9
    assert cache.get("q", 1) == ("answer", False)
    ticks.now += 0.1
    assert cache.get("q", 1) is None and len(cache) == 0

    cache.put("q", 1, "answer")
    assert cache.get("q", 2) is None and len(cache) == 0, "a new generation empties the cache"
    cache.put("late", 1, "computed under the old generation")
    assert cache.get("late", 2) is None and len(cache) == 0


def test_an_answer_that_says_it_lives_shorter_is_kept_only_that_long() -> None:
    """A lexical fallback (the model slow or failing) is reused briefly, its stale time as brief."""
    ticks = Ticks()
    cache: AnswerCache[str] = AnswerCache(
        ttl=10, entries=4, clock=ticks, ttl_of=lambda a: 2.0 if a.startswith("fallback") else 60.0
    )
    cache.get("q", 1)
    cache.put("q", 1, "fallback answer")
    cache.put("r", 1, "fused answer")
    ticks.now += 2.0
    assert cache.get("q", 1) == ("fallback answer", False)
    assert cache.get("r", 1) == ("fused answer", True), "never longer than the cache's own ttl"
    ticks.now += 2.0
    assert cache.get("q", 1) is None
    assert cache.get("r", 1) == ("fused answer", True)
    never: AnswerCache[str] = AnswerCache(ttl=10, entries=4, clock=ticks, ttl_of=lambda a: 0.0)
    never.get("q", 1)
    never.put("q", 1, "kept by nobody")
    assert never.get("q", 1) is None and len(never) == 0


def test_the_least_recently_used_answer_goes_first() -> None:
    cache: AnswerCache[str] = AnswerCache(ttl=10, entries=2, clock=Ticks())
    cache.get("a", 1)
    cache.put("a", 1, "A")
    cache.put("b", 1, "B")
    assert cache.get("a", 1) == ("A", True)
    cache.put("c", 1, "C")
    assert cache.get("b", 1) is None
    assert (cache.get("a", 1), cache.get("c", 1)) == (("A", True), ("C", True))


def test_zero_seconds_turns_the_cache_off() -> None:
    assert load_settings({"MCPLOOKUP_ENV": "test"}).discover_cache_seconds == 15.0
    off = load_settings({"MCPLOOKUP_ENV": "test", "MCPLOOKUP_DISCOVER_CACHE_SECONDS": "0"})
    assert not AnswerCache(off.discover_cache_seconds, 10).enabled


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("discover_cache_total", {"result": result}) or 0.0


@pytest.fixture
async def replicas(db_url: str, settings: Settings) -> AsyncIterator[tuple[RegistryService, RegistryService]]:
    """Two replicas on one database, each with its own cache."""
    first = await open_service(db_url, settings, 2)
    second = await open_service(db_url, settings, 2)
    yield first, second
    for replica in (first, second):
        await replica.repo.close()


async def test_a_repeated_search_is_answered_from_the_cache_until_a_listing_changes(
    db_url: str, replicas: tuple[RegistryService, RegistryService]
) -> None:
    replica, _ = replicas
    add(db_url, "io.example/mailer", description="Send email from your mailbox", health_status="healthy")
    add(db_url, "io.example/calendar", description="Calendar events and invitations")
    ask = {"query": "send an email", "limit": 5}

    first = await replica.discover(ask, transport="rest")
    assert [s.name for s in first.servers] == ["io.example/mailer"]
    hits = counted("hit")
    assert await replica.discover(ask, transport="rest") is first
    assert counted("hit") == hits + 1

    # What the prober writes does not move the generation: the cached answer stays (see the TTL test).
    sql(
        db_url,
        "UPDATE mcp_servers SET avg_response_time_ms = 42, uptime_24h = 99.5, last_health_check_at = now(),"
        " health_status = 'degraded', trust_score = 55 WHERE name = 'io.example/mailer'",
    )
    assert await replica.discover(ask, transport="rest") is first

    # A changed description is seen at once.
    sql(db_url, "UPDATE mcp_servers SET description = 'Send email and SMS' WHERE name = 'io.example/mailer'")
    changed = await replica.discover(ask, transport="rest")
    assert changed is not first and changed.servers[0].description == "Send email and SMS"
    assert changed.servers[0].health.status == "degraded"

    # So is a listing that stops being listed.
    sql(db_url, "UPDATE mcp_servers SET status = 'deleted' WHERE name = 'io.example/calendar'")
    assert (await replica.discover({"query": "calendar"}, transport="rest")).servers == []

    # And a deleted listing.
    sql(db_url, "DELETE FROM mcp_servers WHERE name = 'io.example/mailer'")
    assert (await replica.discover(ask, transport="rest")).servers == []


@pytest.mark.slow  # imports the seed through another replica
async def test_a_write_through_another_replica_reaches_this_replicas_cache(
    replicas: tuple[RegistryService, RegistryService],
) -> None:
    reader, writer = replicas
    ask = {"query": "kubernetes cluster"}
    before = await reader.discover(ask, transport="mcp")
    assert await reader.discover(ask, transport="mcp") is before

    entries = entries_of(json.loads(SEED.read_text(encoding="utf-8")))
    await Importer(writer.repo, utcnow).run(entries)

    after = await reader.discover(ask, transport="mcp")
    assert after.count > before.count
    assert any("kubernetes" in s.name.lower() for s in after.servers)


async def test_pages_and_filters_are_cached_apart(
    db_url: str, replicas: tuple[RegistryService, RegistryService]
) -> None:
    replica, _ = replicas
    for i in range(5):
        add(
            db_url,
            f"io.example/notes-{i}",
            description="Take notes",
            trust_score=10 * i,
            category="productivity",
        )
    first = await replica.discover({"query": "notes", "limit": 2}, transport="rest")
    assert first.next_cursor
    second = await replica.discover(
        {"query": "notes", "limit": 2, "cursor": first.next_cursor}, transport="rest"
    )
    third = await replica.discover({"query": "notes", "limit": 3}, transport="rest")
    filtered = await replica.discover({"query": "notes", "limit": 2, "category": "finance"}, transport="rest")
    names = [s.name for s in first.servers] + [s.name for s in second.servers]
    assert len(set(names)) == 4
    assert third.count == 3 and filtered.count == 0
    again = await replica.discover(
        {"query": "notes", "limit": 2, "cursor": first.next_cursor}, transport="rest"
    )
    assert again is second


async def test_what_the_prober_writes_shows_once_the_answer_is_computed_again(
    db_url: str, settings: Settings
) -> None:
    replica = await open_service(db_url, replace(settings, discover_cache_seconds=0.3), 2)
    try:
        add(db_url, "io.example/mailer", description="Send email", health_status="healthy")
        healthy = {"query": "email", "healthy_only": True}
        first = await replica.discover(healthy, transport="rest")
        assert [s.name for s in first.servers] == ["io.example/mailer"]
        sql(db_url, "UPDATE mcp_servers SET health_status = 'unreachable' WHERE name = 'io.example/mailer'")
        assert await replica.discover(healthy, transport="rest") is first

        # Past its TTL the answer is still served at once, and computed again in the background.
        await asyncio.sleep(0.35)
        stale = counted("stale")
        assert await replica.discover(healthy, transport="rest") is first
        assert counted("stale") == stale + 1
        await replica.discovery.answers.settle()
        assert (await replica.discover(healthy, transport="rest")).servers == []

        # Past two TTLs nothing stale is served: the search runs before the answer.
        sql(db_url, "UPDATE mcp_servers SET health_status = 'healthy' WHERE name = 'io.example/mailer'")
        await asyncio.sleep(0.65)
        again = await replica.discover(healthy, transport="rest")
        assert [s.name for s in again.servers] == ["io.example/mailer"]
    finally:
        await replica.discovery.answers.settle(cancel=True)
        await replica.repo.close()


async def test_with_the_cache_off_every_search_runs(db_url: str, settings: Settings) -> None:
    replica = await open_service(db_url, replace(settings, discover_cache_seconds=0), 2)
    try:
        add(db_url, "io.example/mailer", description="Send email")
        hits, misses = counted("hit"), counted("miss")
        first = await replica.discover({"query": "email"}, transport="rest")
        second = await replica.discover({"query": "email"}, transport="rest")
        assert first is not second and first == second
        assert (counted("hit"), counted("miss")) == (hits, misses)
    finally:
        await replica.repo.close()


async def test_concurrent_askers_of_one_question_share_one_search(
    db_url: str, replicas: tuple[RegistryService, RegistryService]
) -> None:
    replica, _ = replicas
    add(db_url, "io.example/mailer", description="Send email")
    misses, joined, hits = counted("miss"), counted("joined"), counted("hit")
    answers = await asyncio.gather(
        *(replica.discover({"query": "email"}, transport="rest") for _ in range(8))
    )
    assert all(answer is answers[0] for answer in answers)
    assert counted("miss") == misses + 1
    # The first asker's generation read runs alone; the other seven share the next one (SharedRead). Their
    # search then joins the first asker's while it runs, or, when it has already finished (a loaded machine
    # gives the first asker's search its connection before the second read's), finds its stored answer.
    # Either way one search served all eight.
    assert (counted("joined") - joined) + (counted("hit") - hits) == 7


async def test_when_the_first_asker_goes_away_a_waiter_runs_the_search_itself() -> None:
    cache: AnswerCache[int] = AnswerCache(ttl=10, entries=10, clock=Ticks())
    search = HandDriven()
    first = asyncio.create_task(cache.answer("q", 1, search))
    await search.until_started(1)
    waiter = asyncio.create_task(cache.answer("q", 1, search))
    await asyncio.sleep(0)
    first.cancel()
    await search.until_started(2)
    search.release.set()
    assert await waiter == 2
    assert first.cancelled()
    assert cache.get("q", 1) == (2, True)


async def test_a_failed_search_fails_its_waiters_too_and_stores_nothing() -> None:
    cache: AnswerCache[int] = AnswerCache(ttl=10, entries=10, clock=Ticks())
    search = HandDriven()
    search.error = RuntimeError("the database went away")
    tasks = [asyncio.create_task(cache.answer("q", 1, search)) for _ in range(3)]
    await search.until_started(1)
    await asyncio.sleep(0)
    search.release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["the database went away"] * 3
    assert search.started == 1 and len(cache) == 0


async def test_stale_answers_are_served_at_once_and_computed_again_one_at_a_time() -> None:
    ticks = Ticks()
    cache: AnswerCache[int | str] = AnswerCache(ttl=10, entries=10, clock=ticks)
    for key in ("a", "b", "c"):
        cache.get(key, 1)
        cache.put(key, 1, f"old {key}")
    ticks.now += 10
    search = HandDriven()
    assert [await cache.answer(k, 1, search) for k in ("a", "b", "c", "a")] == [
        "old a",
        "old b",
        "old c",
        "old a",
    ]
    await search.until_started(1)
    search.release.set()
    await cache.settle()
    assert search.started == 3, "one refresh per stale answer, however often it was asked for"
    assert search.most_at_once == 1
    assert {cache.get(k, 1) for k in ("a", "b", "c")} == {
        (1, True),
        (2, True),
        (3, True),
    }


async def test_a_cached_answer_is_encoded_once_and_sent_as_is(
    db_url: str, replicas: tuple[RegistryService, RegistryService]
) -> None:
    replica, _ = replicas
    add(db_url, "io.example/mailer", description="Send email")
    answer = await replica.discover({"query": "email"}, transport="rest")
    encoded = answer.encoded()
    assert json.loads(encoded) == answer.model_dump(mode="json")
    again = await replica.discover({"query": "email"}, transport="rest")
    assert again is answer and again.encoded() is encoded
