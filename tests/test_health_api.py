"""get_server_health through the SDK's MCP client and REST; get_server's tools and trust breakdown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import Clock, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from health_support import HOST, add_server, probe_settings
from mcp_targets import CLEAN_TOOLS, TARGET_IP, UvicornThread, sdk_streamable_app
from registration_support import error_text, structured

from mcplookup_mcp.core.settings import Settings


@pytest.fixture(scope="module")
def target() -> Iterator[UvicornThread]:
    with UvicornThread(sdk_streamable_app(stateless=True)) as server:
        yield server


@pytest.fixture
def app(
    make_live: Callable[..., LiveServer],
    settings: Settings,
    dns: ThreadedDnsServer,
    db_url: str,
    clock: Clock,
    target: UvicornThread,
) -> LiveServer:
    dns.set_a(HOST, TARGET_IP)
    add_server(db_url, "test.example/mail", target.url())
    add_server(db_url, "test.example/tools", target.url())
    return make_live(probe_settings(settings, target.port), clock=clock)


async def test_realtime_health_over_mcp_then_rate_limited_per_server(app: LiveServer, clock: Clock) -> None:
    async with mcp_client(app.base_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["get_server_health"].annotations.read_only_hint is True

        before = structured(await client.call_tool("get_server_health", {"name": "test.example/mail"}))
        assert before["status"] == "unknown" and before["history"] == [] and before["uptime_24h"] is None

        now = structured(
            await client.call_tool("get_server_health", {"name": "test.example/mail", "realtime": True})
        )
        assert now["probed_now"] is True and now["status"] == "healthy"
        assert now["uptime_24h"] == 100.0 and now["checks_24h"] == 1
        assert now["history"][0]["trigger"] == "realtime" and now["history"][0]["up"] is True
        assert now["latency_ms"] > 0 and set(now["up_statuses"]) == {"healthy", "degraded", "auth_required"}

        again = await client.call_tool("get_server_health", {"name": "test.example/mail", "realtime": True})
        assert "retry in" in error_text(again)
        # Another server has its own allowance.
        other = await client.call_tool("get_server_health", {"name": "test.example/tools", "realtime": True})
        assert structured(other)["probed_now"] is True

        clock.advance(seconds=31)
        later = structured(
            await client.call_tool("get_server_health", {"name": "test.example/mail", "realtime": True})
        )
        assert later["checks_24h"] == 2

        unknown = await client.call_tool("get_server_health", {"name": "test.example/nothing"})
        assert "no listed server" in error_text(unknown)


async def test_health_over_rest_by_name_and_domain(app: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=app.base_url, timeout=20) as http:
        probed = await http.get("/api/v1/health/test.example/mail", params={"realtime": "true"})
        assert probed.status_code == 200, probed.text
        assert probed.json()["status"] == "healthy"

        limited = await http.get("/api/v1/health/test.example%2Fmail?realtime=true")
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["Retry-After"]) <= 31

        by_domain = (await http.get("/api/v1/health/example.test")).json()
        assert by_domain["name"] == "test.example/mail" and by_domain["probed_now"] is False
        assert by_domain["other_servers_on_domain"] == ["test.example/tools"]
        assert by_domain["checks_24h"] == 1

        metrics = (await http.get("/metrics")).text
        # One of the two listed servers has been probed, and it was up.
        assert "healthy_servers_percentage 100.0" in metrics
        assert 'health_probes_total{status="healthy",trigger="realtime"}' in metrics

        bad = await http.get("/api/v1/health/example.test?realtime=maybe")
        assert bad.status_code == 422 and bad.json()["field"] == "realtime"
        unknown = await http.get("/api/v1/health/example.test?deep=1")
        assert unknown.status_code == 422


async def test_get_server_marks_tools_untrusted_and_breaks_trust_down(app: LiveServer) -> None:
    async with mcp_client(app.base_url) as client:
        await client.call_tool("get_server_health", {"name": "test.example/mail", "realtime": True})
        answer: dict[str, Any] = structured(
            await client.call_tool("get_server", {"name": "test.example/mail"})
        )
    tools = answer["tools"]
    assert tools["untrusted"] is True and tools["notice"]
    assert {t["name"]: t["description"] for t in tools["items"]} == CLEAN_TOOLS  # control characters gone
    trust = answer["trust"]
    assert trust["score"] == sum(s["points"] for s in trust["signals"]) == answer["server"]["trust_score"]
    assert answer["uptime_24h"] == 100.0

    async with httpx.AsyncClient(base_url=app.base_url) as http:
        rest = (await http.get("/api/v1/servers/test.example/mail")).json()
    assert rest["tools"] == tools and rest["trust"] == trust
