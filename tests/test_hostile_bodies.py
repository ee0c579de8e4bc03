"""Bodies and query strings a parser chokes on: deep nesting, lone surrogates, bytes that are not UTF-8.
Each is a 4xx problem naming where it is, nothing is stored, and the connection stays open for the next
request."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from mcp_wire_support import MODERN
from mcp_wire_support import call as fast_path_call
from registration_support import LISTING, counts

NESTED = b"[" * 1000 + b"]" * 1000


class KeptConnection:
    """One HTTP/1.1 connection, asserted to stay open across requests."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
        self.sock: Any = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any], str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        if self.sock is None:
            self.sock = self.conn.sock
        assert self.conn.sock is self.sock, "the server closed the connection"
        response = self.conn.getresponse()
        text = response.read().decode()
        assert not response.will_close, "the server closed the connection"
        kind = response.getheader("content-type") or ""
        return response.status, {"type": kind}, text

    def close(self) -> None:
        self.conn.close()


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("/api/v1/register", NESTED, "body"),
    ("/api/v1/verify", NESTED, "body"),
    (
        "/api/v1/register",
        json.dumps(LISTING).encode()[:-1] + b', "capabilities": ' + NESTED + b"}",
        "body",
    ),
    (
        "/api/v1/register",
        json.dumps(LISTING).encode()[:-1] + b', "title": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
        "title",
    ),
    ("/api/v1/register", json.dumps(LISTING | {"description": "\ud800"}).encode(), "description"),
    ("/api/v1/register", json.dumps(LISTING | {"title": "ok \udc00 not"}).encode(), "title"),
    (
        "/api/v1/register",
        json.dumps(LISTING | {"capabilities": ["email", "\ud83d"]}).encode(),
        "capabilities",
    ),
    ("/api/v1/register", json.dumps(LISTING | {"\ud800": "x"}).encode(), "a field name"),
    ("/api/v1/verify", json.dumps({"domain": "example.test", "registration_id": "\udfff"}).encode(), ""),
    ("/api/v1/register", json.dumps(LISTING).encode().replace(b"Example", b"Ex\xffample"), ""),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES)
async def test_hostile_json_bodies_are_problems_on_a_kept_connection(
    live: LiveServer, db_url: str, path: str, body: bytes, field: str
) -> None:
    before = counts(db_url)
    conn = KeptConnection(live.base_url)
    try:
        status, headers, text = conn.request("POST", path, body)
        assert status in (400, 422), text
        assert headers["type"] == "application/problem+json"
        problem = json.loads(text)
        if body.count(b"[") >= 1000 or b'{"a":' * 40 in body:
            assert "nested more than 32 levels deep" in problem["detail"]
        if b"\\ud" in body:
            assert "lone surrogate" in problem["detail"]
        if field:
            assert problem["field"] == field, problem
        # The same connection answers the next request.
        status, _, text = conn.request("GET", "/api/v1/stats")
        assert status == 200, text
    finally:
        conn.close()
    assert counts(db_url) == before


async def test_a_good_listing_still_registers_after_a_hostile_one(live: LiveServer, db_url: str) -> None:
    conn = KeptConnection(live.base_url)
    try:
        status, _, _ = conn.request("POST", "/api/v1/register", NESTED)
        assert status == 422
        # A character beyond U+FFFF, written as a surrogate pair, is text like any other.
        listing = json.dumps(LISTING | {"description": "Mail \U0001f4e7 for agents"}).encode()
        assert b"\\ud83d\\udce7" in listing
        status, _, text = conn.request("POST", "/api/v1/register", listing)
        assert status == 202, text
    finally:
        conn.close()
    with psycopg.connect(db_url) as pg:
        row = pg.execute("SELECT description FROM mcp_servers WHERE domain = 'example.test'").fetchone()
    assert row is not None and row[0] == "Mail \U0001f4e7 for agents"


BAD_QUERIES: list[tuple[str, str]] = [
    ("/api/v1/discover?q=%ff%fe", "q"),
    ("/api/v1/discover?q=%ed%a0%80", "q"),  # a surrogate, UTF-8 encoded: not UTF-8
    ("/api/v1/discover?q=mail&category=%c3", "category"),
    ("/api/v1/capabilities?limit=%80", "limit"),
    ("/v0.1/servers?cursor=%ff", "cursor"),
    ("/api/v1/health/example.test?realtime=%fe", "realtime"),
]


@pytest.mark.parametrize(("target", "field"), BAD_QUERIES)
async def test_query_strings_that_are_not_utf8_are_refused_naming_the_parameter(
    live: LiveServer, target: str, field: str
) -> None:
    conn = KeptConnection(live.base_url)
    try:
        status, headers, text = conn.request("GET", target)
        assert status == 422, text
        assert headers["type"] == "application/problem+json"
        problem = json.loads(text)
        assert problem["field"] == field
        assert "is not UTF-8" in problem["detail"]
        status, _, _ = conn.request("GET", "/api/v1/discover?q=caf%C3%A9")
        assert status == 200
    finally:
        conn.close()


@BOTH_MCP_PATHS
async def test_mcp_refuses_the_same_bodies_with_json_rpc_errors(live: LiveServer, db_url: str) -> None:
    before = counts(db_url)
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "discover_servers", "arguments": {"query": "\ud800"}},
    }
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        # Under each handshake era, batches allowed (no header: 2025-03-26) or not: a parse error first.
        for version in ({"MCP-Protocol-Version": "2025-06-18"}, {}):
            for body in (NESTED, json.dumps(call).encode(), json.dumps([call]).encode()):
                response = await http.post("/mcp", content=body, headers=headers | version)
                assert response.status_code == 400, response.text
                assert response.json()["error"]["code"] == -32700
    async with mcp_client(live.base_url) as client:
        result = await client.call_tool("discover_servers", {"query": "email"})
        assert not result.is_error
    assert counts(db_url) == before


async def test_cursors_nested_as_deep_as_they_fit_are_refused(live: LiveServer) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 740).decode().rstrip("=")
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        for target, params in (
            ("/v0.1/servers", {"cursor": deep}),
            ("/api/v1/discover", {"q": "mail", "cursor": deep[:900] + ".c2ln"}),
        ):
            response = await http.get(target, params=params)
            assert response.status_code == 422, response.text
            assert response.json()["field"] == "cursor"


@BOTH_MCP_PATHS
@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("register_server", LISTING | {"description": "\ud800"}, "description"),
        ("register_server", LISTING | {"domain": "\ud800.test"}, "domain"),
        ("discover_servers", {"query": "mail \udfff"}, "query"),
        ("get_server", {"name": "com.x/\ud800"}, "name"),
    ],
)
async def test_the_modern_revision_refuses_lone_surrogates_naming_the_field(
    live: LiveServer, db_url: str, tool: str, arguments: dict[str, Any], field: str
) -> None:
    """The modern revision's parser takes a lone surrogate as text: the tool's checks refuse it."""
    before = counts(db_url)
    body, headers = fast_path_call(arguments, MODERN, tool=tool)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.post("/mcp", content=body, headers=headers)
    assert response.status_code in (200, 400), response.text
    reply = response.json()
    text = reply["result"]["content"][0]["text"] if "result" in reply else reply["error"]["message"]
    assert reply.get("result", {}).get("isError", True) is True
    assert text.startswith(f"{field}:") or f" {field}:" in text, text
    assert counts(db_url) == before
