"""Rate limits: in process, and shared through a real Redis by every replica."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest
from test_registration_flow import LISTING

from mcplookup_mcp.errors import RateLimited
from mcplookup_mcp.ratelimit import RateLimiter, RedisRateLimiter


async def test_in_process_window_resets_after_a_minute() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    await limiter.hit("register", "a")
    await limiter.hit("register", "a")
    await limiter.hit("register", "b")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("register", "a")
    assert refused.value.retry_after == 60
    now[0] += 61
    await limiter.hit("register", "a")


async def test_replicas_share_one_count_in_redis(redis_url: str) -> None:
    prefix = f"test:{secrets.token_hex(4)}"
    replicas = [RedisRateLimiter(redis_url, 3, prefix=prefix) for _ in range(2)]
    try:
        await replicas[0].hit("verify", "client")
        await replicas[1].hit("verify", "client")
        await replicas[0].hit("verify", "client")
        with pytest.raises(RateLimited) as refused:
            await replicas[1].hit("verify", "client")
        assert 1 <= refused.value.retry_after <= 60
        await replicas[1].hit("verify", "another-client")
        await replicas[1].hit("register", "client")
    finally:
        for limiter in replicas:
            await limiter.close()


async def test_unreachable_redis_falls_back_to_counting_in_process() -> None:
    from conftest import free_port

    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", 1)
    try:
        await limiter.hit("register", "c")
        with pytest.raises(RateLimited):
            await limiter.hit("register", "c")
    finally:
        await limiter.close()


async def test_two_app_replicas_enforce_one_limit(make_live: Any, settings: Any, redis_url: str) -> None:
    # A prefix of this test's own keeps its counts apart from any other user of the same Redis.
    shared = replace(
        settings, redis_url=redis_url, redis_prefix=f"test-{secrets.token_hex(4)}", rate_limit_per_minute=2
    )
    first, second = make_live(shared), make_live(shared)
    statuses = []
    for live in (first, second, first):
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            statuses.append((await http.post("/api/v1/register", json=LISTING)).status_code)
    assert statuses == [202, 202, 429]
