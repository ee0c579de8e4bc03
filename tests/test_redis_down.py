"""Redis killed under load (kill -9, as a crash ends it): no request fails, since answers come from
PostgreSQL and limits are counted in process meanwhile; the outage is logged once and counted; and once
Redis is back on its port the app uses it again by itself.

The Redis here is a server of the test's own on a spare port, so killing it disturbs no one else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import structlog
from conftest import LiveServer, mcp_client
from listing_support import add
from load_clients import OK, Load, Step, mcp_outcome, rest_outcome, unexpected
from prometheus_client import REGISTRY
from stack import RedisProcess

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core.settings import Settings

UNAVAILABLE = "redis unavailable: answering from PostgreSQL and counting limits in process"
BACK = "redis answers again"
# Once Redis answers on its port again: the app's pause between attempts (RedisStore.retry_seconds)
# and room.
USED_AGAIN_WITHIN = 5.0


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _figures() -> dict[str, float]:
    return {
        "outages": _sample("redis_outages_total"),
        "cache": _sample("redis_fallbacks_total", use="cache"),
        "ratelimit": _sample("redis_fallbacks_total", use="ratelimit"),
        "shared unavailable": _sample("discover_shared_cache_total", result="unavailable"),
    }


def _uses(redis: RedisProcess, prefix: str) -> set[str]:
    """What the app keeps in Redis now: "rl" (rate limits), "answer" (the shared answers)."""
    return {key.decode().split(":")[1] for key in redis.client().keys(f"{prefix}:*")}


@pytest.mark.slow
async def test_redis_killed_under_load_fails_no_request_and_is_used_again_once_back(
    db_url: str, settings: Settings, own_redis: RedisProcess
) -> None:
    add(db_url, "io.example/mailer", description="Send email from your mailbox")
    prefix = f"down{secrets.token_hex(4)}"
    app_settings = dataclasses.replace(settings, redis_url=own_redis.url, redis_prefix=prefix)
    live = LiveServer(create_app(app_settings, db_url)).start()
    try:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=live.base_url, timeout=30))

            def answer_names(names: list[str]) -> tuple[str, str]:
                # The answer is PostgreSQL's whether Redis is there or not.
                return (OK, "") if names == ["io.example/mailer"] else ("wrong answer", repr(names))

            # A new query each call: no answer is in this process's cache, so each goes to Redis's tier.
            def rest_discover(tag: int) -> Step:
                async def step(n: int) -> tuple[str, str]:
                    response = await http.get("/api/v1/discover", params={"q": f"email rest {tag} {n}"})
                    outcome = rest_outcome(response)
                    if outcome[0] != OK:
                        return outcome
                    return answer_names([s["name"] for s in response.json()["servers"]])

                return step

            def mcp_discover(client: Any, tag: int) -> Step:
                async def step(n: int) -> tuple[str, str]:
                    result = await client.call_tool("discover_servers", {"query": f"email mcp {tag} {n}"})
                    outcome = mcp_outcome(result)
                    if outcome[0] != OK:
                        return outcome
                    return answer_names([s["name"] for s in result.structured_content["servers"]])

                return step

            searchers = [await stack.enter_async_context(mcp_client(live.base_url)) for _ in range(3)]
            with structlog.testing.capture_logs() as logs:
                load = Load(
                    {f"rest discover {i}": rest_discover(i) for i in range(3)}
                    | {f"mcp discover {i}": mcp_discover(client, i) for i, client in enumerate(searchers)}
                )
                await asyncio.sleep(1.0)
                assert {"rl", "answer"} <= _uses(own_redis, prefix)
                before = _figures()
                own_redis.kill()
                await asyncio.sleep(1.5)
                during = _figures()
                own_redis.start()
                back = time.monotonic()
                while _uses(own_redis, prefix) != {"rl", "answer"}:
                    assert time.monotonic() < back + USED_AGAIN_WITHIN, _uses(own_redis, prefix)
                    await asyncio.sleep(0.05)
                used_again = _figures()
                await asyncio.sleep(0.3)
                calls = await load.stop()
    finally:
        live.stop()
    assert unexpected(calls) == []
    assert len(calls) > 60, "too few calls to have been under load"
    assert [call for call in calls if call.started > back] != [], "no call after Redis came back"
    # One outage, one warning that it began and one that it ended, however many requests met it.
    warnings = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [UNAVAILABLE, BACK]
    assert during["outages"] == before["outages"] + 1
    for use in ("cache", "ratelimit", "shared unavailable"):
        assert during[use] > before[use], use
    # Limits counted in Redis again, and answers looked up there: no fallback since.
    assert _figures() == used_again
