"""Rate limits: per client address and per API key, a budget per action, in process and shared through
a real Redis (with a password, as the seed runs it) by every replica; and what happens when it goes."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest
import structlog
from conftest import mcp_client
from registration_support import LISTING
from stack import RedisProcess

from mcplookup_mcp.core.errors import RateLimited
from mcplookup_mcp.core.metrics import REDIS_FALLBACKS, REDIS_OUTAGES
from mcplookup_mcp.services.ratelimit import Budgets, RateLimiter, RedisRateLimiter
from mcplookup_mcp.store.redis_store import RedisStore

BUDGETS = Budgets(3, {"discover": 5, "register": 2})


async def test_in_process_window_resets_after_a_minute() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    await limiter.hit("register", "a")
    await limiter.hit("register", "a")
    await limiter.hit("register", "b")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("register", "a")
    assert refused.value.retry_after == 60
    now[0] += 45
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("register", "a")
    assert refused.value.retry_after == 15
    now[0] += 16
    await limiter.hit("register", "a")


async def test_each_action_has_its_own_budget_and_a_key_is_counted_apart() -> None:
    limiter = RateLimiter(3, budgets=BUDGETS)
    for _ in range(2):
        await limiter.hit("register", "a")
    with pytest.raises(RateLimited, match="too many register requests from this client address"):
        await limiter.hit("register", "a")
    for _ in range(5):  # discovery's budget is its own
        await limiter.hit("discover", "a")
    # One key from many addresses: the key's own count refuses the sixth.
    for address in ("k1", "k2", "k3", "k4", "k5"):
        await limiter.hit("discover", address, api_key="mcpl_same")
    with pytest.raises(RateLimited, match="from this API key: the limit is 5 a minute"):
        await limiter.hit("discover", "k6", api_key="mcpl_same")


async def test_replicas_share_each_count_in_redis(own_redis: RedisProcess) -> None:
    prefix = f"test:{secrets.token_hex(4)}"
    stores = [RedisStore(own_redis.url, prefix) for _ in range(2)]
    replicas = [RedisRateLimiter(store, BUDGETS) for store in stores]
    try:
        await replicas[0].hit("register", "client")
        await replicas[1].hit("register", "client")
        with pytest.raises(RateLimited) as refused:
            await replicas[0].hit("register", "client")
        # The window opened at the first request, a moment ago: the whole minute is left.
        assert 58 <= refused.value.retry_after <= 60
        await replicas[1].hit("register", "another-client")
        await replicas[1].hit("verify", "client")
        for n in range(5):
            await replicas[n % 2].hit("discover", f"address-{n}", api_key="mcpl_key")
        with pytest.raises(RateLimited, match="from this API key"):
            await replicas[1].hit("discover", "address-9", api_key="mcpl_key")
        # Counted under a digest: the key itself is never written to Redis.
        held = [key.decode() for key in own_redis.client().keys(f"{prefix}:*")]
        assert held and not any("mcpl_key" in key for key in held)
        assert all(0 < own_redis.client().pttl(key) <= 60_000 for key in held)
    finally:
        for store in stores:
            await store.close()


async def test_a_wrong_password_falls_back_to_counting_in_process(own_redis: RedisProcess) -> None:
    store = RedisStore(own_redis.url.replace(own_redis.password, "wrong"), "test")
    limiter = RedisRateLimiter(store, BUDGETS)
    try:
        await limiter.hit("register", "c")
        await limiter.hit("register", "c")
        with pytest.raises(RateLimited):
            await limiter.hit("register", "c")
    finally:
        await store.close()


def _sample(counter: Any, **labels: str) -> float:
    return float((counter.labels(**labels) if labels else counter)._value.get())


async def test_an_outage_warns_once_counts_and_ends_by_itself(own_redis: RedisProcess) -> None:
    prefix = f"test:{secrets.token_hex(4)}"
    store = RedisStore(own_redis.url, prefix, retry_seconds=0.2)
    limiter = RedisRateLimiter(store, Budgets(1000))
    outages, fallbacks = _sample(REDIS_OUTAGES), _sample(REDIS_FALLBACKS, use="ratelimit")
    try:
        await limiter.hit("discover", "a")
        own_redis.stop()
        with structlog.testing.capture_logs() as logs:
            for _ in range(50):
                await limiter.hit("discover", "a")  # never an error: counted in process
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert [entry["event"] for entry in warnings] == [
            "redis unavailable: answering from PostgreSQL and counting limits in process"
        ]
        assert _sample(REDIS_OUTAGES) == outages + 1
        assert _sample(REDIS_FALLBACKS, use="ratelimit") == fallbacks + 50
        own_redis.start()
        import asyncio

        await asyncio.sleep(0.3)
        with structlog.testing.capture_logs() as logs:
            await limiter.hit("discover", "a")
        assert [entry["event"] for entry in logs] == ["redis answers again"]
        # Counting in Redis again, from a fresh window (the old count went with the stopped server).
        assert own_redis.client().get(f"{prefix}:rl:discover:address:a") == b"1"
    finally:
        await store.close()


async def test_over_the_discovery_limit_rest_says_429_and_mcp_says_when(
    make_live: Any, settings: Any, own_redis: RedisProcess
) -> None:
    limited = replace(
        settings,
        redis_url=own_redis.url,
        redis_prefix=f"test-{secrets.token_hex(4)}",
        rate_limit_discover_per_minute=2,
    )
    first, second = make_live(limited), make_live(replace(limited, mcp_fast_path=False))
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        assert (await http.get("/api/v1/discover", params={"q": "mail"})).status_code == 200
    async with mcp_client(second.base_url) as client:
        assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
        refused = await client.call_tool("discover_servers", {"query": "mail"})
    assert refused.is_error
    text = refused.content[0].text
    assert "the limit is 2 a minute" in text and "retry in" in text
    # The direct path for discover_servers (first) and the SDK's own pipeline (second) both count.
    async with mcp_client(first.base_url) as client:
        direct = await client.call_tool("discover_servers", {"query": "mail"})
    assert direct.is_error and "retry in" in direct.content[0].text
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        response = await http.get("/api/v1/discover", params={"q": "mail"})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 58 <= int(response.headers["retry-after"]) <= 60
    # Sending a key does not lift the address's own budget.
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        keyed = await http.get(
            "/api/v1/discover", params={"q": "mail"}, headers={"Authorization": "Bearer mcpl_x"}
        )
    assert keyed.status_code == 429  # the address is still over its budget


async def test_two_app_replicas_enforce_one_register_limit(
    make_live: Any, settings: Any, own_redis: RedisProcess
) -> None:
    shared = replace(
        settings,
        redis_url=own_redis.url,
        redis_prefix=f"test-{secrets.token_hex(4)}",
        rate_limit_per_minute=2,
    )
    first, second = make_live(shared), make_live(shared)
    statuses = []
    for live in (first, second, first):
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            statuses.append((await http.post("/api/v1/register", json=LISTING)).status_code)
    assert statuses == [202, 202, 429]


async def test_a_redis_that_stops_answering_costs_one_deadline_then_none(own_redis: RedisProcess) -> None:
    import os
    import signal
    import time

    store = RedisStore(own_redis.url, f"test:{secrets.token_hex(4)}", timeout=0.2, retry_seconds=30)
    limiter = RedisRateLimiter(store, Budgets(1000))
    assert own_redis.proc is not None
    try:
        await limiter.hit("verify", "a")
        os.kill(own_redis.proc.pid, signal.SIGSTOP)  # alive, connected, silent
        try:
            started = time.perf_counter()
            await limiter.hit("verify", "a")
            first = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(20):
                await limiter.hit("verify", "a")
            after = time.perf_counter() - started
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        # The first call waited for its deadline; the next ones did not try while Redis is known away.
        assert 0.15 <= first < 2.0
        assert after < first
        assert not store.available
    finally:
        await store.close()
