"""The production shape, run for real: two `mcplookup serve` replicas behind Debian's nginx running the
shipped config, sharing PostgreSQL and a password-protected Redis of the tests' own.

Clients connect from their own loopback addresses (127.0.0.2 and up) while nginx reaches the replicas
from 127.0.0.1, the one trusted proxy: so the address each replica believes is the client's, as it
would be across a network."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import create_database, drop_database, free_port
from stack import Nginx, RedisProcess, Replica, replica_env

pytestmark = pytest.mark.slow

DISCOVER_BUDGET = 30
REGISTER_BUDGET = 30


@dataclass
class Stack:
    redis: RedisProcess
    replicas: list[Replica]
    nginx: Nginx

    def client(self, source: str, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTPS client of nginx connecting from `source`."""
        transport = httpx.AsyncHTTPTransport(local_address=source, verify=self.nginx.tls())
        return httpx.AsyncClient(base_url=self.nginx.base_url, transport=transport, timeout=20, **kwargs)


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    name = f"mcpl_stack_{os.getpid()}"
    url = create_database(pg_admin_url, name, template=template_db)
    redis = RedisProcess(free_port()).start()
    env = replica_env(
        url,
        redis.url,
        MCPLOOKUP_REDIS_PREFIX=f"stack{os.getpid()}",
        MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE=str(DISCOVER_BUDGET),
        MCPLOOKUP_RATE_LIMIT_PER_MINUTE=str(REGISTER_BUDGET),
        MCPLOOKUP_DISCOVER_CACHE_SECONDS="30",
    )
    replicas = [Replica(free_port(), env).start() for _ in range(2)]
    nginx: Nginx | None = None
    try:
        for replica in replicas:
            replica.wait_ready()
        nginx = Nginx(
            tmp_path_factory.mktemp("nginx"),
            [f"127.0.0.1:{replica.port}" for replica in replicas],
            free_port(),
            free_port(),
        ).start()
        yield Stack(redis, replicas, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
            print(nginx.error_log()[-5000:])
        for replica in replicas:
            replica.stop()
            if replica.proc is not None and replica.proc.stdout is not None:  # shown when a test fails
                print(replica.proc.stdout.read().decode(errors="replace")[-5000:])
        redis.stop()
        drop_database(pg_admin_url, name)


@asynccontextmanager
async def mcp_through(stack: Stack, source: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    transport = httpx2.AsyncHTTPTransport(local_address=source, verify=stack.nginx.tls())
    async with httpx2.AsyncClient(transport=transport, timeout=20) as http_client:
        url = f"{stack.nginx.base_url}/mcp"
        async with Client(streamable_http_client(url, http_client=http_client)) as client:
            yield client


def metric(base_url: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def register_and_verify(base_url: str, domain: str, description: str) -> tuple[str, str]:
    """A server listed through one replica, straight to it; returns its name and the domain's key."""
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        claim = await http.post(
            "/api/v1/register",
            json={
                "domain": domain,
                "slug": "mcp",
                "endpoint": f"https://mcp.{domain}/mcp",
                "description": description,
                "capabilities": ["testing"],
            },
        )
        assert claim.status_code == 202, claim.text
        verified = await http.post(
            "/api/v1/verify", json={"domain": domain, "registration_id": claim.json()["registration_id"]}
        )
        assert verified.status_code == 200, verified.text
        return claim.json()["name"], verified.json()["api_key"]


async def test_mcp_and_rest_through_nginx(stack: Stack) -> None:
    async with mcp_through(stack, "127.0.0.2") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"discover_servers", "register_server", "verify_domain"} <= tools
        found = await client.call_tool("discover_servers", {"query": "anything at all"})
        assert not found.is_error
    async with stack.client("127.0.0.2") as http:
        first = await http.get("/api/v1/discover", params={"q": "nginx cache check"})
        again = await http.get("/api/v1/discover", params={"q": "nginx cache check"})
        assert first.status_code == again.status_code == 200
        assert (first.headers["x-cache-status"], again.headers["x-cache-status"]) == ("MISS", "HIT")
        assert first.json() == again.json()
        # The app's validators and freshness reach the client unchanged.
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=20"
        revalidated = await http.get(
            "/api/v1/discover", params={"q": "nginx cache check"}, headers={"If-None-Match": etag}
        )
        assert revalidated.status_code == 304 and revalidated.content == b""
        for header in ("strict-transport-security", "x-content-type-options", "x-frame-options"):
            assert header in first.headers
        assert (await http.get("/metrics")).status_code == 403
    async with httpx.AsyncClient() as http:
        plain = await http.get(f"http://127.0.0.1:{stack.nginx.http_port}/api/v1/stats")
    assert plain.status_code == 308 and plain.headers["location"].startswith("https://")


async def test_a_write_on_one_replica_is_seen_at_once_on_the_other(stack: Stack) -> None:
    a, b = stack.replicas
    query = {"q": "zebrafish telemetry", "limit": 5}
    async with httpx.AsyncClient(timeout=20) as http:
        # Both replicas' caches and Redis hold the empty answer before the write.
        for replica in (a, b):
            assert (await http.get(f"{replica.base_url}/api/v1/discover", params=query)).json()["count"] == 0
        name, key = await register_and_verify(a.base_url, "zebra.example.test", "zebrafish telemetry feed")
        on_b = (await http.get(f"{b.base_url}/api/v1/discover", params=query)).json()
        assert [server["name"] for server in on_b["servers"]] == [name]
        # An update through B: A's next answer, and Redis's, carry it.
        changed = await http.patch(
            f"{b.base_url}/api/v1/servers/{name}",
            json={"description": "zebrafish telemetry feed, now with alerts"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert changed.status_code == 200, changed.text
        on_a = (await http.get(f"{a.base_url}/api/v1/discover", params=query)).json()
        assert on_a["servers"][0]["description"] == "zebrafish telemetry feed, now with alerts"
    async with stack.client("127.0.0.2") as http:
        through = (await http.get("/api/v1/discover", params={"q": "zebrafish alerts"})).json()
        assert [server["name"] for server in through["servers"]] == [name]


async def test_a_replica_that_never_searched_answers_from_redis(stack: Stack) -> None:
    a, b = stack.replicas
    query = {"q": "computed once for both", "limit": 3}
    hits = metric(b.base_url, "discover_shared_cache_total", 'result="hit"')
    async with httpx.AsyncClient(timeout=20) as http:
        from_a = await http.get(f"{a.base_url}/api/v1/discover", params=query)
        from_b = await http.get(f"{b.base_url}/api/v1/discover", params=query)
    assert from_a.json() == from_b.json()
    assert metric(b.base_url, "discover_shared_cache_total", 'result="hit"') == hits + 1


async def test_a_forged_forwarded_for_through_nginx_is_not_believed(stack: Stack) -> None:
    statuses = []
    async with stack.client("127.0.0.7") as http:
        for n in range(REGISTER_BUDGET + 5):
            response = await http.post(
                "/api/v1/register",
                json={
                    "domain": f"forged{n}.example.test",
                    "endpoint": f"https://mcp.forged{n}.example.test/mcp",
                },
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            statuses.append(response.status_code)
    assert statuses[:REGISTER_BUDGET] == [202] * REGISTER_BUDGET
    assert set(statuses[REGISTER_BUDGET:]) == {429}


async def test_the_next_request_past_a_budget_is_refused_per_client_and_per_key(stack: Stack) -> None:
    async with stack.client("127.0.0.8") as http:
        # Each question is new, so nginx's cache passes every one to a replica (either of them).
        for n in range(DISCOVER_BUDGET):
            assert (await http.get("/api/v1/discover", params={"q": f"budget {n}"})).status_code == 200
        refused = await http.get("/api/v1/discover", params={"q": "budget over"})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert "from this client address" in refused.json()["detail"]
    # One key from two addresses: the key's count refuses it, though neither address is over.
    headers = {"Authorization": "Bearer mcpl_budget-test-key"}
    statuses = []
    for n in range(DISCOVER_BUDGET + 1):
        async with stack.client(f"127.0.0.{9 + n % 2}", headers=headers) as http:
            response = await http.get("/api/v1/discover", params={"q": f"keyed {n}"})
            statuses.append(response.status_code)
    assert statuses[:DISCOVER_BUDGET] == [200] * DISCOVER_BUDGET and statuses[-1] == 429
    assert "from this API key" in response.json()["detail"]


async def test_mcp_clients_behind_nginx_are_told_apart(stack: Stack) -> None:
    async with mcp_through(stack, "127.0.0.21") as client:
        for n in range(DISCOVER_BUDGET):
            assert not (await client.call_tool("discover_servers", {"query": f"mcp budget {n}"})).is_error
            await asyncio.sleep(0.05)  # under nginx's own 10 a second with its burst of 20
        refused = await client.call_tool("discover_servers", {"query": "mcp budget over"})
    assert refused.is_error and "from this client address" in refused.content[0].text
    assert re.search(r"retry in (5[5-9]|60) s", refused.content[0].text)
    # Another address behind the same nginx has its own budget.
    async with mcp_through(stack, "127.0.0.22") as client:
        assert not (await client.call_tool("discover_servers", {"query": "mcp budget over"})).is_error


async def test_nginx_refuses_past_its_burst_as_a_problem(stack: Stack) -> None:
    async with stack.client("127.0.0.11") as http:
        answers = await asyncio.gather(*(http.get("/api/v1/stats") for _ in range(80)))
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, [answer.status_code for answer in answers]
    assert {answer.status_code for answer in answers} <= {200, 429}
    for answer in refused:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["type"] == "https://mcplookup.org/problems/rate-limited"
        assert "x-frame-options" in answer.headers


async def test_bodies_over_either_limit_are_refused_as_problems(stack: Stack) -> None:
    async with stack.client("127.0.0.12") as http:
        # Over the app's 64 KiB, within nginx's 128 KiB: the replica's own problem.
        app = await http.post("/api/v1/register", content=b"{" + b" " * 100_000 + b"}")
        # Over nginx's 128 KiB: nginx's, in the same form.
        proxy = await http.post("/api/v1/register", content=b"{" + b" " * 200_000 + b"}")
        mcp = await http.post("/mcp", content=b"{" + b" " * 200_000 + b"}")
    for answer, limit in ((app, 65536), (proxy, 131072), (mcp, 131072)):
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "https://mcplookup.org/problems/body-too-large"
        assert answer.json()["max_body_bytes"] == limit


async def test_with_redis_stopped_every_request_still_answers(stack: Stack) -> None:
    a, b = stack.replicas
    fallbacks = metric(a.base_url, "redis_fallbacks_total", 'use="ratelimit"')
    stack.redis.stop()
    try:
        statuses = []
        async with stack.client("127.0.0.12") as http, mcp_through(stack, "127.0.0.13") as client:
            for n in range(12):
                statuses.append(
                    (await http.get("/api/v1/discover", params={"q": f"no redis {n}"})).status_code
                )
                statuses.append(
                    200 if not (await client.call_tool("discover_servers", {"query": "mail"})).is_error else 0
                )
        assert set(statuses) == {200}
        assert metric(a.base_url, "redis_fallbacks_total", 'use="ratelimit"') > fallbacks
    finally:
        stack.redis.start()
    await asyncio.sleep(1.2)  # past the replicas' pause between attempts
    async with httpx.AsyncClient(timeout=20) as http:
        for replica in (a, b):
            response = await http.get(f"{replica.base_url}/api/v1/discover", params={"q": "redis is back"})
            assert response.status_code == 200
    keys = {key.decode().split(":")[1] for key in stack.redis.client().keys("*")}
    assert {"rl", "answer"} <= keys  # shared limits and the shared cache resumed


async def test_a_killed_replica_fails_no_request(stack: Stack) -> None:
    a, b = stack.replicas
    failures: list[str] = []
    served_by_b = metric(
        b.base_url, "http_requests_total", 'method="GET",path="/api/v1/discover",status="200"'
    )
    async with mcp_through(stack, "127.0.0.14") as client:
        for n in range(40):
            if n == 10:
                # B had its share of the loop so far: the kill interrupts real traffic.
                now = metric(
                    b.base_url, "http_requests_total", 'method="GET",path="/api/v1/discover",status="200"'
                )
                assert now > served_by_b
                b.kill()
            source = f"127.0.0.{15 + n % 4}"
            async with stack.client(source) as http:
                response = await http.get("/api/v1/discover", params={"q": f"killed {n}"})
                if response.status_code != 200:
                    failures.append(f"REST {response.status_code}")
            if n % 2 == 0:  # within the address's discovery budget
                result = await client.call_tool("discover_servers", {"query": f"killed {n}"})
                if result.is_error:
                    failures.append(f"MCP {result.content[0].text}")
    assert failures == []
    # With no replica left, nginx's own answer is a problem too.
    a.kill()
    async with stack.client("127.0.0.20") as http:
        gone = await http.get("/api/v1/stats")
    assert gone.status_code == 503
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.headers["retry-after"] == "5"
