"""The discover arguments are declared once (core/discover_args.py): the MCP tool's input schema, the REST
parameters and the OpenAPI document are that declaration, and a bad value is refused with one text on
every transport."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from prometheus_client import REGISTRY
from registration_support import error_text

from mcplookup_mcp.core.arguments import Arguments
from mcplookup_mcp.core.discover_args import BROWSE_CAPABILITIES, DISCOVER
from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.core.settings import Settings


def _as_declared(prop: dict[str, Any]) -> dict[str, Any]:
    """A tool argument's schema as the SDK lists it, less what pydantic adds on its own: the title it
    makes of the name, and a null default where the declaration states none."""
    out = {k: v for k, v in prop.items() if k != "title"}
    if out.get("default", 0) is None:
        del out["default"]
    return out


async def test_the_tools_the_rest_routes_and_the_document_are_the_declaration(live: LiveServer) -> None:
    async with mcp_client(live.base_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        document = (await http.get("/api/v1/openapi.json")).json()
    for tool, path, declared in (
        ("discover_servers", "/api/v1/discover", DISCOVER),
        ("browse_capabilities", "/api/v1/capabilities", BROWSE_CAPABILITIES),
    ):
        schema = tools[tool].input_schema
        assert list(schema["properties"]) == list(declared.names)
        assert not schema.get("required")
        for arg in declared.args:
            assert _as_declared(schema["properties"][arg.name]) == arg.schema(), arg.name
        documented = [p for p in document["paths"][path]["get"]["parameters"] if p["in"] == "query"]
        assert [p["name"] for p in documented] == [arg.query_name for arg in declared.args]
        for parameter, arg in zip(documented, declared.args, strict=True):
            expected = arg.schema()
            assert parameter["description"] == expected.pop("description")
            assert parameter["schema"] == expected and parameter["required"] is False, arg.name


def test_the_declared_bounds_enums_and_defaults() -> None:
    """What the tool schema and the document show of a few arguments, spelled out once here."""
    assert DISCOVER["limit"].schema() == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
        "description": "How many results, 1 to 100",
    }
    assert DISCOVER["sort"].schema()["enum"] == ["relevance", "trust", "latency", "newest", "name"]
    assert DISCOVER["transport"].schema()["enum"] == ["streamable-http", "sse", "stdio"]
    assert DISCOVER["min_trust_score"].schema() | {"description": ""} == {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "description": "",
    }
    assert DISCOVER.check({}) == {arg.name: arg.default if not arg.is_list else [] for arg in DISCOVER.args}


def test_the_rest_query_is_parsed_by_the_declaration() -> None:
    pairs = [
        ("q", "send email"),
        ("capability", "email,calendar"),
        ("capability", "mail"),
        ("exclude_capabilities", "sms"),
        ("verified_only", "true"),
        ("limit", "5"),
    ]
    data = DISCOVER.from_query(pairs)
    assert data == {
        "query": "send email",
        "capabilities": ["email", "calendar", "mail"],
        "exclude_capabilities": ["sms"],
        "verified_only": "true",
        "limit": "5",
    }
    checked = DISCOVER.check(data)
    assert checked["limit"] == 5 and checked["verified_only"] is True
    # Every documented name and every MCP name is taken; anything else is refused, naming it.
    assert set(DISCOVER.query_names()) == {arg.query_name for arg in DISCOVER.args} | set(DISCOVER.names)
    with pytest.raises(InvalidInput, match="sort_by"):
        DISCOVER.from_query([("sort_by", "name")])
    with pytest.raises(InvalidInput, match="more than once"):
        DISCOVER.from_query([("limit", "5"), ("limit", "6")])
    assert Arguments(()).check({}) == {}


# (argument, value): each refused by the service's check, whichever transport carried it.
BAD_VALUES: list[tuple[str, Any]] = [
    ("limit", 0),
    ("limit", 101),
    ("limit", "ten"),
    ("sort", "popularity"),
    ("transport", "carrier-pigeon"),
    ("min_trust_score", 101),
    ("min_trust_score", -1),
    ("cursor", "not-a-cursor"),
    ("capability_match", "most"),
]


def _served() -> float:
    return REGISTRY.get_sample_value("mcp_fast_path_total", {"result": "served"}) or 0.0


@BOTH_MCP_PATHS
async def test_a_bad_value_has_one_refusal_on_every_transport(
    live: LiveServer, request: pytest.FixtureRequest
) -> None:
    rest: dict[tuple[str, str], str] = {}
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        for field, value in BAD_VALUES:
            response = await http.get("/api/v1/discover", params={"q": "email", field: str(value)})
            assert response.status_code == 422, response.text
            assert response.json()["field"] == field
            rest[field, str(value)] = response.json()["detail"]
        capped = await http.get("/api/v1/capabilities", params={"limit": "0"})
        assert capped.status_code == 422
    served = _served()
    async with mcp_client(live.base_url) as client:
        for field, value in BAD_VALUES:
            text = error_text(await client.call_tool("discover_servers", {"query": "email", field: value}))
            # The SDK opens every failed tool's text with this; the refusal after it is REST's detail.
            refusal = text.removeprefix("Error executing tool discover_servers: ")
            assert refusal == rest[field, str(value)]
            assert refusal.startswith(f"{field}: ") and "; allowed: " in refusal and "; send " in refusal
        browse = error_text(await client.call_tool("browse_capabilities", {"limit": 0}))
    assert browse == "Error executing tool browse_capabilities: " + capped.json()["detail"]
    # Each path answered the calls itself: the direct one every discover call, the SDK's all of them.
    direct = request.node.callspec.params["mcp_path"] == "fast-path"
    assert _served() - served == (len(BAD_VALUES) if direct else 0)
    assert rest["limit", "0"] == (
        "limit: '0' is out of range; allowed: a whole number from 1 to 100; send a number such as 10, or "
        "leave it out for 10"
    )


async def test_every_transport_passes_its_client_to_the_discover_limit(
    make_live: Callable[..., LiveServer], settings: Settings
) -> None:
    """The limit counts the address each transport names (REST, both MCP paths, the web search) in one
    budget; the service called without a client (the CLI's search) is not limited."""
    limited = make_live(replace(settings, rate_limit_discover_per_minute=4))
    sdk_only = make_live(replace(settings, rate_limit_discover_per_minute=1, mcp_fast_path=False))
    async with httpx.AsyncClient(base_url=limited.base_url) as http:
        assert (await http.get("/api/v1/discover", params={"q": "mail"})).status_code == 200
        assert (await http.get("/", params={"q": "mail"})).status_code == 200
        async with mcp_client(limited.base_url) as client:
            assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
            assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
            refused = await client.call_tool("discover_servers", {"query": "mail"})
        assert refused.is_error and "retry in" in error_text(refused)
        assert (await http.get("/api/v1/discover", params={"q": "mail"})).status_code == 429
    async with mcp_client(sdk_only.base_url) as client:
        assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
        assert "retry in" in error_text(await client.call_tool("discover_servers", {"query": "mail"}))
    service = limited.app.state.service
    for _ in range(3):
        await service.discover({"query": "mail"}, transport="cli")
