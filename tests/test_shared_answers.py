"""The Redis tier of discovery answers, and the HTTP validators of a discovery GET."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import httpx
from conftest import free_port
from stack import RedisProcess

from mcplookup_mcp.services.answer_cache import SharedAnswers
from mcplookup_mcp.store.redis_store import RedisStore


def _tier(store: RedisStore, outcomes: list[str]) -> SharedAnswers[str]:
    return SharedAnswers(store, 5, encode=str.encode, decode=bytes.decode, count=outcomes.append)


async def test_an_answer_is_shared_under_its_generation_only(own_redis: RedisProcess) -> None:
    prefix = f"test:{secrets.token_hex(4)}"
    one, other = RedisStore(own_redis.url, prefix), RedisStore(own_redis.url, prefix)
    seen: list[str] = []
    computed: list[str] = []

    async def compute() -> str:
        computed.append("searched")
        return f"answer {len(computed)}"

    try:
        assert await _tier(one, seen).answer(("q",), 7, compute) == "answer 1"
        # Another replica, that never searched: Redis's answer, no search.
        assert await _tier(other, seen).answer(("q",), 7, compute) == "answer 1"
        assert len(computed) == 1
        # A write moved the generation: the old entry is never read again.
        assert await _tier(other, seen).answer(("q",), 8, compute) == "answer 2"
        assert seen == ["miss", "hit", "miss"]
        ttl = [own_redis.client().pttl(key) for key in own_redis.client().keys(f"{prefix}:answer:*")]
        assert len(ttl) == 2 and all(0 < left <= 5000 for left in ttl)
    finally:
        await one.close()
        await other.close()


async def test_without_redis_every_answer_is_computed() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "test")
    seen: list[str] = []

    async def compute() -> str:
        return "computed"

    try:
        assert await _tier(store, seen).answer(("q",), 1, compute) == "computed"
        assert seen == ["unavailable"]
    finally:
        await store.close()


async def test_a_discovery_get_revalidates_with_its_etag(make_live: Any, settings: Any) -> None:
    live = make_live(replace(settings, discover_cache_seconds=30))
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        first = await http.get("/api/v1/discover", params={"q": "mail"})
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=20"
        same = await http.get("/api/v1/discover", params={"q": "mail"}, headers={"If-None-Match": etag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
        other = await http.get("/api/v1/discover", params={"q": "calendar"}, headers={"If-None-Match": etag})
        assert other.status_code == 200 and other.headers["etag"] != etag
        claim = await http.post(
            "/api/v1/register",
            json={
                "domain": "mail.example.test",
                "endpoint": "https://mcp.mail.example.test/mcp",
                "description": "mail for agents",
            },
        )
        assert claim.status_code == 202
        # A pending claim is not listed, so the answer, and its tag, stay as they were...
        assert (
            await http.get("/api/v1/discover", params={"q": "mail"}, headers={"If-None-Match": etag})
        ).status_code == 304
        # ...while a question whose answer holds it gets a new tag.
        pending = await http.get(
            "/api/v1/discover",
            params={"q": "mail", "include_pending": "true"},
            headers={"If-None-Match": etag},
        )
        assert pending.status_code == 200 and pending.json()["count"] == 1


async def test_an_answer_from_redis_is_the_one_computed_byte_for_byte(
    make_live: Any, settings: Any, own_redis: RedisProcess
) -> None:
    from prometheus_client import REGISTRY

    shared = replace(
        settings,
        redis_url=own_redis.url,
        redis_prefix=f"test-{secrets.token_hex(4)}",
        mock_dns_verification=True,
        discover_cache_seconds=30,
    )
    first, second = make_live(shared), make_live(shared)
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        claim = await http.post(
            "/api/v1/register",
            json={
                "domain": "otter.example.test",
                "endpoint": "https://mcp.otter.example.test/mcp",
                "description": "otter sightings by river",
                "capabilities": ["wildlife"],
            },
        )
        verified = await http.post(
            "/api/v1/verify",
            json={"domain": "otter.example.test", "registration_id": claim.json()["registration_id"]},
        )
        assert verified.status_code == 200
        computed = await http.get("/api/v1/discover", params={"q": "otter river"})
    hits = REGISTRY.get_sample_value("discover_shared_cache_total", {"result": "hit"}) or 0.0
    async with httpx.AsyncClient(base_url=second.base_url) as http:
        shared_answer = await http.get("/api/v1/discover", params={"q": "otter river"})
    assert computed.json()["count"] == 1
    assert shared_answer.content == computed.content
    assert shared_answer.headers["etag"] == computed.headers["etag"]
    assert REGISTRY.get_sample_value("discover_shared_cache_total", {"result": "hit"}) == hits + 1
