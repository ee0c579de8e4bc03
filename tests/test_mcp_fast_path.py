"""The direct discover_servers path answers exactly as the SDK does, and hands everything else to the SDK."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from conftest import LiveServer, mcp_client
from listing_support import add, import_seed
from mcp.client.client import Client
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from mcp_wire_support import ENVELOPE, MODERN, call, declined, served
from pydantic import Field
from registration_support import structured

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.transports.mcp_fast_path import DiscoverFastPath
from mcplookup_mcp.transports.mcp_tools import RegistryMCPServer

VERSIONS = [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS]


@pytest.fixture
async def pair(
    service: RegistryService, make_live: Callable[..., LiveServer], settings: Settings
) -> tuple[str, str]:
    """Two replicas on one database with the seed imported: the direct path on, and off."""
    await import_seed(service)
    direct = make_live(settings)
    sdk_only = make_live(dataclasses.replace(settings, mcp_fast_path=False))
    return direct.base_url, sdk_only.base_url


async def both(pair: tuple[str, str], body: bytes, headers: dict[str, str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=20) as http:
        return [await http.post(f"{base}/mcp", content=body, headers=headers) for base in pair]


# Set per response by uvicorn and the request-id middleware, not by either path.
VARYING_HEADERS = {"date", "x-request-id"}


def same_answer(direct: httpx.Response, sdk: httpx.Response) -> None:
    """Byte for byte and header for header: a client cannot tell which path answered."""
    assert direct.status_code == sdk.status_code, (direct.text[:300], sdk.text[:300])
    assert direct.content == sdk.content, (direct.text[:300], sdk.text[:300])
    # The order of differently named fields carries no meaning in HTTP (RFC 9110, 5.3).
    headers = [
        sorted((k, v) for k, v in r.headers.multi_items() if k not in VARYING_HEADERS) for r in (direct, sdk)
    ]
    assert headers[0] == headers[1], headers
    assert all(r.headers.get("x-request-id") for r in (direct, sdk))


CALLS: list[dict[str, Any]] = [
    {"query": "todo list"},
    {"query": "I need to manage my google calendar events", "limit": 3},
    {"query": "kubernets", "verified_only": False, "include_pending": True},
    {"query": "zzqx wholly unknown words"},
    {"query": "", "sort": "name", "limit": 5},
    {"query": "émail & | ! : * ( ) ' % _ \\ 日本語"},
    {"query": "postgres", "capabilities": ["database"], "capability_match": "any"},
]


@pytest.mark.parametrize("version", VERSIONS)
async def test_answers_match_the_sdk_for_every_revision(pair: tuple[str, str], version: str) -> None:
    before = served()
    for index, arguments in enumerate(CALLS):
        direct, sdk = await both(pair, *call(arguments, version, request_id=f"req-{index}"))
        same_answer(direct, sdk)
        assert direct.json()["id"] == f"req-{index}"
        assert direct.json()["result"]["isError"] is False
    assert served() - before == len(CALLS)


async def test_pages_and_errors_match_the_sdk(pair: tuple[str, str]) -> None:
    first, _ = await both(pair, *call({"query": "database", "limit": 2}, MODERN))
    cursor = first.json()["result"]["structuredContent"]["next_cursor"]
    assert cursor
    before = served()
    cases: list[dict[str, Any]] = [
        {"query": "database", "limit": 2, "cursor": cursor},
        {"query": "database", "limit": 2, "cursor": cursor[:-3] + "abc"},
        {"query": "other words", "limit": 2, "cursor": cursor},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": "ten"},
        {"query": "x", "sort_by": "name"},
        {"query": "x", "min_trust_score": 101},
        {"query": "x", "sort": "popularity"},
        {"query": "x" * 600},
    ]
    for version in (MODERN, HANDSHAKE_PROTOCOL_VERSIONS[-1]):
        for arguments in cases:
            direct, sdk = await both(pair, *call(arguments, version, request_id=7))
            same_answer(direct, sdk)
    tampered, _ = await both(pair, *call(cases[1], MODERN))
    assert tampered.json()["result"]["isError"] is True
    assert "cursor" in tampered.json()["result"]["content"][0]["text"]
    assert served() - before == 2 * len(cases) + 1


async def test_anything_unusual_is_left_to_the_sdk(pair: tuple[str, str]) -> None:
    """Each case either fails a header or envelope check or asks for more than the direct path does."""
    plain_body, plain_headers = call({"query": "todo"}, MODERN)
    modern_with = json.loads(plain_body)
    cases: list[tuple[bytes, dict[str, str]]] = [
        # a progress token rides in _meta
        call({"query": "todo"}, MODERN, _meta=ENVELOPE | {"progressToken": "p1"}),
        # the envelope's version disagrees with the header
        call(
            {"query": "todo"},
            MODERN,
            _meta=ENVELOPE | {"io.modelcontextprotocol/protocolVersion": "2099-01-01"},
        ),
        # the envelope lacks client capabilities
        call({"query": "todo"}, MODERN, _meta={"io.modelcontextprotocol/protocolVersion": MODERN}),
        # client info of the wrong shape: only the revision's schema says so, and valid envelopes
        # have been validated (and remembered) by the time this one comes
        call({"query": "todo"}, MODERN, _meta=ENVELOPE | {"io.modelcontextprotocol/clientInfo": {"name": 5}}),
        # a batch
        (json.dumps([modern_with]).encode(), plain_headers),
        # a batch of two calls of the tool
        (json.dumps([modern_with, modern_with | {"id": 2}]).encode(), plain_headers),
        # a notification: the call without an id
        (json.dumps({k: v for k, v in modern_with.items() if k != "id"}).encode(), plain_headers),
        # not JSON
        (b'{"jsonrpc": "2.0", "id": 1, ', plain_headers),
        # a boolean id
        (json.dumps(modern_with | {"id": True}).encode(), plain_headers),
        # arguments that are not an object
        (
            json.dumps(modern_with | {"params": modern_with["params"] | {"arguments": ["todo"]}}).encode(),
            plain_headers,
        ),
        # a legacy call with _meta
        call({"query": "todo"}, "2025-06-18", _meta={"progressToken": 3}),
        # an extra envelope member
        (json.dumps(modern_with | {"extra": 1}).encode(), plain_headers),
    ]
    before_served, before_declined = served(), declined()
    for body, headers in cases:
        direct, sdk = await both(pair, body, headers)
        assert direct.status_code == sdk.status_code, (body, direct.text[:300], sdk.text[:300])
        assert direct.content == sdk.content, body
    assert served() == before_served
    assert declined() - before_declined == len(cases)

    # Checks that stop a request before its body is read: the wrong media type, an unaccepted reply
    # type, a Host the server does not answer for.
    refused = [
        plain_headers | {"content-type": "text/plain"},
        plain_headers | {"accept": "text/html"},
        plain_headers | {"host": "evil.test"},
    ]
    for headers in refused:
        direct, sdk = await both(pair, plain_body, headers)
        assert direct.status_code == sdk.status_code and direct.status_code >= 400, headers
        assert direct.content == sdk.content
    assert served() == before_served
    assert declined() - before_declined == len(cases) + len(refused)


async def test_other_calls_never_reach_it(pair: tuple[str, str]) -> None:
    before = served(), declined()
    direct, sdk = await both(pair, *call({}, MODERN, tool="get_discovery_stats"))
    assert direct.status_code == sdk.status_code == 200
    assert direct.json()["result"]["isError"] is sdk.json()["result"]["isError"] is False
    body, headers = call({"query": "todo"}, MODERN)
    # The header names another tool than the body: the SDK refuses the mismatch.
    direct, sdk = await both(pair, body, headers | {"mcp-name": "get_server"})
    assert direct.status_code == sdk.status_code == 400 and direct.content == sdk.content
    assert (served(), declined()) == before


async def test_sdk_clients_of_both_eras_are_answered_directly(pair: tuple[str, str], db_url: str) -> None:
    direct_base, _ = pair
    before = served()
    async with mcp_client(direct_base) as client:
        first = structured(await client.call_tool("discover_servers", {"query": "weather forecast"}))
        assert first["count"] >= 1
        # A listing written between two identical calls is in the second answer (a new encoding).
        add(db_url, "io.test/weather-station", description="weather forecast for any weather station")
        second = structured(await client.call_tool("discover_servers", {"query": "weather forecast"}))
        assert "io.test/weather-station" in [s["name"] for s in second["servers"]]
    async with Client(f"{direct_base}/mcp", mode="legacy") as legacy:
        third = structured(await legacy.call_tool("discover_servers", {"query": "weather forecast"}))
        assert third == second
    assert served() - before == 3


async def test_the_text_block_is_the_answer_as_compact_json_on_both_paths(pair: tuple[str, str]) -> None:
    for base in pair:
        async with mcp_client(base) as client:
            result = await client.call_tool("discover_servers", {"query": "todo list", "limit": 3})
        assert not result.is_error
        [block] = result.content
        assert json.loads(block.text) == result.structured_content
        assert result.structured_content["count"] >= 1
        # Compact: what the REST shim sends, not the SDK's indented form of a returned model.
        assert "\n" not in block.text and '": ' not in block.text
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            rest = await http.get("/api/v1/discover", params={"q": "todo list", "limit": 3})
        assert json.loads(rest.content) == json.loads(block.text)


def _fast_path_for(tool: Callable[..., Any]) -> DiscoverFastPath:
    server = RegistryMCPServer(name="t")
    server.tool(name="discover_servers")(tool)
    return DiscoverFastPath(lambda scope, receive, send: None, server, TransportSecuritySettings())  # type: ignore[arg-type]


def test_it_steps_aside_for_tools_that_need_the_sdk() -> None:
    async def plain(query: str = "") -> dict[str, str]:
        return {}

    async def with_context(ctx: Context, query: str = "") -> dict[str, str]:
        return {}

    async def header_mirrored(
        query: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Query"})] = "",
    ) -> dict[str, str]:
        return {}

    assert _fast_path_for(plain).enabled
    # A tool reading who calls from its context is served: the direct path names the caller itself.
    assert _fast_path_for(with_context).enabled
    assert not _fast_path_for(header_mirrored).enabled
