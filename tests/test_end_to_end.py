"""The whole loop a server owner and an agent go through, across registration, probing and discovery:
register, publish, verify, probe the real MCP server behind the endpoint, then find it by what its tools do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import mcp_client
from dnsserver import ThreadedDnsServer
from health_support import HOST, probe_settings
from mcp_targets import TARGET_IP, UvicornThread, sdk_streamable_app


@pytest.fixture(scope="module")
def target() -> Iterator[UvicornThread]:
    with UvicornThread(sdk_streamable_app(stateless=True)) as server:
        yield server


async def test_register_verify_probe_discover_by_tool(
    make_live: Any, settings: Any, dns: ThreadedDnsServer, target: UvicornThread
) -> None:
    dns.set_a(HOST, TARGET_IP)
    live = make_live(probe_settings(settings, target.port))
    endpoint = f"http://{HOST}:{target.port}/mcp"
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        claim = (
            await http.post(
                "/api/v1/register",
                json={
                    "domain": "example.test",
                    "endpoint": endpoint,
                    "description": "A small arithmetic server",
                },
            )
        ).json()
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        verified = (
            await http.post(
                "/api/v1/verify", json={"domain": "example.test", "registration_id": claim["registration_id"]}
            )
        ).json()
        assert verified["verified"] is True

        # Before any probe, the tool names are unknown: nothing matches "echo".
        before = (await http.get("/api/v1/discover", params={"q": "echo"})).json()
        assert before["count"] == 0

        health = await http.get("/api/v1/health/test.example/mcp", params={"realtime": "true"})
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"

    async with mcp_client(live.base_url) as client:
        found = await client.call_tool("discover_servers", {"query": "echo the text back"})
        assert not found.is_error
        servers = found.structured_content["servers"]
        assert [s["name"] for s in servers] == ["test.example/mcp"]
        assert "echo" in servers[0]["match"]["matched"]["tools"]
        assert servers[0]["health"]["status"] == "healthy"

        got = await client.call_tool("get_server", {"name": "test.example/mcp"})
        answer = got.structured_content
        tools = answer["tools"]
        assert tools["untrusted"] is True
        assert {tool["name"] for tool in tools["items"]} == {"add", "echo"}
        # Text from the probed server arrives cleaned: the ANSI escape in echo's description is gone.
        assert all("\x1b" not in tool["description"] for tool in tools["items"])
        signals = answer["trust"]["signals"]
        assert sum(s["points"] for s in signals) == answer["server"]["trust_score"] > 0
