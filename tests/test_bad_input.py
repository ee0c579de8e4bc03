"""Every bad input gets a clear error naming the field, through MCP and REST, and nothing stored changes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from registration_support import LISTING, counts, error_text, register_rest

BAD_REGISTRATIONS: list[tuple[dict[str, Any], str]] = [
    ({"domain": ""}, "domain"),
    ({"domain": 5}, "not a string"),
    ({"endpoint": ["https://mcp.example.test/mcp"]}, "not a string"),
    ({"domain": "192.168.1.10"}, "IP address"),
    ({"domain": "localhost"}, "one label"),
    ({"domain": "https://example.test"}, "a bare domain"),
    ({"domain": "exa mple.test"}, "not a valid domain"),
    ({"domain": "a" * 64 + ".test"}, "domain"),
    ({"domain": "x" * 260 + ".test"}, "at most 253 characters"),
    ({"endpoint": "ftp://mcp.example.test/mcp"}, "ftp scheme"),
    ({"endpoint": "https://evil.test/mcp"}, "host evil.test is not under example.test"),
    ({"endpoint": "https://notexample.test/mcp"}, "is not under example.test"),
    ({"endpoint": "https://127.0.0.1/mcp"}, "is not a domain name"),
    ({"endpoint": "https://user:pw@mcp.example.test/mcp"}, "user name or password"),
    ({"endpoint": "https://mcp.example.test/" + "a" * 2100}, "at most 2048 characters"),
    ({"slug": "Bad Slug!"}, "slug"),
    ({"description": "d" * 2001}, "at most 2000 characters"),
    ({"capabilities": ["x" * 65]}, "capabilities"),
    ({"capabilities": [f"c{i}" for i in range(33)]}, "33 entries"),
    ({"transport": "carrier-pigeon"}, "transport: 'carrier-pigeon' is not one of the choices"),
    ({"auth_type": "magic"}, "auth_type: 'magic' is not one of the choices"),
    ({"category": "Not A Category!"}, "category"),
    ({"website_url": "javascript:alert(1)"}, "website_url"),
]


@pytest.mark.parametrize(("change", "expected"), BAD_REGISTRATIONS)
async def test_bad_registration_is_refused_everywhere(
    live: LiveServer, db_url: str, change: dict[str, Any], expected: str
) -> None:
    before = counts(db_url)
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/v1/register", json=LISTING | change)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert expected in problem["detail"]
    assert problem["field"] in change or problem["field"] == next(iter(change))
    async with mcp_client(live.base_url) as client:
        args = LISTING | change
        result = await client.call_tool("register_server", args)
    text = error_text(result)
    if "not a string" in expected:
        # Wrong JSON types stop at the tool's input schema, before the service: the text names the field.
        field = next(iter(change))
        assert text.startswith(f"{field}: input should be a valid string") and "; allowed: string" in text
    else:
        assert expected in text
    assert counts(db_url) == before


@BOTH_MCP_PATHS
async def test_unknown_fields_are_refused(live: LiveServer, db_url: str) -> None:
    before = counts(db_url)
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/v1/register", json=LISTING | {"verified": True})
        assert response.status_code == 422 and response.json()["field"] == "verified"
        response = await http.post("/api/v1/register", json=LISTING, params={"dry_run": "1"})
        assert response.status_code == 422 and response.json()["field"] == "dry_run"
        response = await http.get("/api/v1/discover", params={"q": "x", "sort_by": "name"})
        assert response.status_code == 422 and "sort_by" in response.json()["detail"]
        response = await http.post(
            "/api/v1/verify", json={"domain": "example.test", "registration_id": "mcpreg_x", "force": True}
        )
        assert response.status_code == 422 and response.json()["field"] == "force"
    async with mcp_client(live.base_url) as client:
        text = error_text(await client.call_tool("register_server", LISTING | {"verified": True}))
        assert "does not take verified" in text and "domain" in text
        text = error_text(await client.call_tool("discover_servers", {"query": "x", "sort_by": "name"}))
        assert "does not take sort_by" in text
    assert counts(db_url) == before


async def test_malformed_bodies_and_routes(http: httpx.AsyncClient, db_url: str) -> None:
    before = counts(db_url)
    response = await http.post(
        "/api/v1/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]
    response = await http.post("/api/v1/register", json=["a", "list"])
    assert response.status_code == 422 and "JSON object" in response.json()["detail"]
    response = await http.post(
        "/api/v1/register", content=b"domain=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422 and "application/json" in response.json()["detail"]
    response = await http.post("/api/v1/register", json=LISTING | {"description": "x" * 70_000})
    assert response.status_code == 413 and response.json()["max_body_bytes"] == 65536
    response = await http.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    response = await http.delete("/api/v1/register")
    assert response.status_code == 405
    assert counts(db_url) == before


BAD_VERIFY = [
    ({"domain": "example.test"}, "registration_id"),
    ({"domain": "example.test", "registration_id": "not-an-id"}, "registration_id"),
    ({"domain": "example.test", "registration_id": "mcpreg_" + "x" * 300}, "307 characters long"),
    ({"domain": "10.0.0.1", "registration_id": "mcpreg_abc"}, "IP address"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_VERIFY)
async def test_bad_verification_is_refused(
    live: LiveServer, db_url: str, body: dict[str, Any], expected: str
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        await register_rest(http)
        before = counts(db_url)
        response = await http.post("/api/v1/verify", json=body)
    assert response.status_code == 422 and expected in response.json()["detail"]
    async with mcp_client(live.base_url) as client:
        result = await client.call_tool(
            "verify_domain", {"domain": "example.test", "registration_id": ""} | body
        )
    assert result.is_error
    assert counts(db_url) == before


BAD_DISCOVER = [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"domain": "not a domain"}, "domain"),
    ({"query": "q" * 501}, "at most 500 characters"),
    ({"category": "!!"}, "category"),
    ({"include_pending": "maybe"}, "include_pending"),
]


@pytest.mark.parametrize(("params", "expected"), BAD_DISCOVER)
async def test_bad_discovery_is_refused(
    http: httpx.AsyncClient, params: dict[str, Any], expected: str
) -> None:
    response = await http.get("/api/v1/discover", params=params)
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


@BOTH_MCP_PATHS
async def test_bad_discovery_over_mcp(live: LiveServer) -> None:
    async with mcp_client(live.base_url) as client:
        assert error_text(await client.call_tool("discover_servers", {"limit": 500}))
        assert "domain" in error_text(
            await client.call_tool("discover_servers", {"domain": "no spaces.test"})
        )
        text = error_text(await client.call_tool("get_server", {}))
        assert "exactly one of name" in text
        text = error_text(await client.call_tool("get_server", {"name": "nope/none"}))
        assert "no listed server" in text
        text = error_text(await client.call_tool("get_server", {"name": "not a name"}))
        assert "not a server name" in text


HOSTILE = [
    "& | ! : * ( ) ' % _ \\",
    "'; DROP TABLE mcp_servers; --",
    "a:* & !b",
    "%_%",
    "\\\\'\\",
    "日本語のメール",
    "emoji 📧 mail",
    "((((",
    "!!!",
    "<->",
    "\x00null",
    "mail' | 'x",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_query_text_is_harmless(http: httpx.AsyncClient, db_url: str, text: str) -> None:
    before = counts(db_url)
    response = await http.get("/api/v1/discover", params={"q": text})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["servers"], list)
    assert counts(db_url) == before


# "<field>: <what was wrong>; allowed: <range>; send <what instead>", the one form of a refused argument.
ONE_FORM = re.compile(
    r"^(?P<field>[a-z_.]+): (?P<wrong>[^;]+); allowed: (?P<allowed>.+); send (?P<instead>.+)$"
)


@BOTH_MCP_PATHS
async def test_mcp_refusals_share_one_form(live: LiveServer) -> None:
    """Every refused argument, over the real MCP client and on both discover paths: the field, what was
    wrong, what is allowed, and what to send instead."""
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("discover_servers", {"limit": 500}, "limit"),
        ("discover_servers", {"limit": "lots"}, "limit"),
        ("discover_servers", {"sort": "random"}, "sort"),
        ("discover_servers", {"transport": "pigeon"}, "transport"),
        ("discover_servers", {"min_trust_score": 101}, "min_trust_score"),
        ("discover_servers", {"domain": "no spaces.test"}, "domain"),
        ("discover_servers", {"capabilities": ["x" * 100]}, "capabilities"),
        ("discover_servers", {"category": "Not A Category!"}, "category"),
        ("discover_servers", {"cursor": "forged.cursor"}, "cursor"),
        ("discover_servers", {"query": "x" * 600}, "query"),
        ("discover_servers", {"colour": "blue"}, "colour"),
        ("get_server", {}, "name"),
        ("get_server", {"name": "not a name"}, "name"),
        ("get_server_health", {"name": "io.github.a/b", "domain": "a.com"}, "name"),
        (
            "register_server",
            {"domain": "example.com", "endpoint": "ftp://example.com/mcp"},
            "endpoint",
        ),
        ("register_server", {"domain": "192.0.2.1", "endpoint": "https://192.0.2.1/mcp"}, "domain"),
        ("register_server", {"domain": "example.com"}, "endpoint"),
        ("verify_domain", {"domain": "example.com", "registration_id": "nope"}, "registration_id"),
        ("browse_capabilities", {"limit": 0}, "limit"),
    ]
    async with mcp_client(live.base_url) as client:
        for tool, arguments, field in calls:
            text = error_text(await client.call_tool(tool, arguments))
            found = ONE_FORM.match(text.removeprefix(f"Error executing tool {tool}: "))
            assert found, (tool, arguments, text)
            assert found["field"] == field, (tool, arguments, text)
