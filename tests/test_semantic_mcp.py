"""Meaning through the surfaces agents and scripts use: the SDK's MCP client on both MCP paths, and REST,
against the seed embedded by the real model (tests/conftest.py's seeded_pg15)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client

from mcplookup_mcp.core.settings import Settings


@pytest.fixture
def db_url(seeded_pg15: str) -> Iterator[str]:
    yield seeded_pg15


@pytest.fixture
def settings(settings: Settings, semantic_base_settings: Settings) -> Settings:
    return replace(
        settings,
        embedding_model=semantic_base_settings.embedding_model,
        embedding_timeout=semantic_base_settings.embedding_timeout,
    )


@pytest.mark.slow
@BOTH_MCP_PATHS
async def test_meaning_through_the_mcp_client_and_rest(live: LiveServer) -> None:
    async with mcp_client(live.base_url) as client:
        called = await client.call_tool("discover_servers", {"query": "who owns a domain name", "limit": 3})
        assert not called.is_error
        answer = called.structured_content
        assert answer["search_mode"] == "fused"
        # Not one word in common with whois-mcp's "MCP Server for whois lookups": found by meaning alone.
        top = answer["servers"][0]
        assert top["name"] == "io.github.bharathvaj-ganesan/whois-mcp"
        assert top["match"]["similarity"] > 0.3 and top["match"]["terms"]["domain"] == "missing"
        called = await client.call_tool("discover_servers", {"query": "show me the guitar chords for a song"})
        assert called.structured_content["no_confident_match"] is True
        stats = await client.call_tool("get_discovery_stats", {})
        assert stats.structured_content["search"]["mode"] == "fused"
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        rest = (await http.get("/api/v1/discover", params={"q": "run shell commands", "limit": 3})).json()
        assert rest["search_mode"] == "fused"
        terminals = {"io.github.ferrislucas/iterm-mcp", "io.github.simonb97/win-cli-mcp-server"}
        assert terminals & {s["name"] for s in rest["servers"]}
        # "currencies" is a spelling edit from iterm-mcp's "current": the meaning refuses it.
        rest = (await http.get("/api/v1/discover", params={"q": "convert currencies"})).json()
        assert "io.github.ferrislucas/iterm-mcp" not in [s["name"] for s in rest["servers"]]
        health = (await http.get("/health")).json()
        assert health["search"]["mode"] == "fused" and health["search"]["model"].startswith("bert-6x384@")


@pytest.mark.slow
async def test_the_web_search_page_ranks_by_meaning_too(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        page = await http.get("/", params={"q": "who owns a domain name"})
    assert page.status_code == 200
    html = page.text
    # The one whois server, which shares no word with the question, is listed; edwin, which lexical
    # search offers as a partial match through a synonym of "domain" the meaning does not support, is not.
    assert "io.github.bharathvaj-ganesan/whois-mcp" in html
    assert "io.github.edwin-finance/edwin" not in html
