"""A body over MCPLOOKUP_MAX_BODY_BYTES is refused with 413 saying the limit, on REST and on both MCP paths,
whether it declares its length or arrives chunked; nothing of it is stored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from mcp.shared.exceptions import MCPError
from mcp_wire_support import MODERN, call
from registration_support import LISTING, counts

from mcplookup_mcp.core.settings import DEFAULT_MAX_BODY_BYTES, Settings


async def chunked(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    """The body as a stream of unknown length: httpx sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def oversized_registration(limit: int) -> bytes:
    body = json.dumps(LISTING | {"description": "x" * limit}).encode()
    assert len(body) > limit
    return body


def assert_rest_refusal(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://mcplookup.org/problems/body-too-large"
    assert problem["status"] == 413
    assert problem["max_body_bytes"] == limit
    assert f"larger than {limit} bytes" in problem["detail"]


def assert_mcp_refusal(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/json"
    reply = response.json()
    assert reply["jsonrpc"] == "2.0" and reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert f"larger than {limit} bytes" in reply["error"]["message"]
    assert reply["error"]["data"] == {"max_body_bytes": limit}


async def test_rest_refuses_a_body_over_the_limit(http: httpx.AsyncClient, db_url: str) -> None:
    before = counts(db_url)
    body = oversized_registration(DEFAULT_MAX_BODY_BYTES)
    headers = {"content-type": "application/json"}
    assert_rest_refusal(
        await http.post("/api/v1/register", content=body, headers=headers), DEFAULT_MAX_BODY_BYTES
    )
    # Chunked: no Content-Length to judge by; the bytes are counted as they come.
    response = await http.post("/api/v1/register", content=chunked(body), headers=headers)
    assert "content-length" not in response.request.headers
    assert_rest_refusal(response, DEFAULT_MAX_BODY_BYTES)
    # The owner routes read bodies the same way (refused before the key is even looked at).
    response = await http.patch("/api/v1/servers/test.example/mail", content=chunked(body), headers=headers)
    assert_rest_refusal(response, DEFAULT_MAX_BODY_BYTES)
    assert counts(db_url) == before


async def test_a_chunked_body_within_the_limit_is_read_whole(http: httpx.AsyncClient, db_url: str) -> None:
    body = json.dumps(LISTING).encode()
    response = await http.post(
        "/api/v1/register", content=chunked(body, size=7), headers={"content-type": "application/json"}
    )
    assert response.status_code in (201, 202), response.text
    assert response.json()["name"] == "test.example/mail"


async def test_the_limit_is_a_setting(
    make_live: Callable[..., LiveServer], settings: Settings, db_url: str
) -> None:
    limit = 1024
    live = make_live(dataclasses.replace(settings, max_body_bytes=limit))
    listing = json.dumps(LISTING | {"description": "d" * 1500}).encode()
    assert limit < len(listing) < DEFAULT_MAX_BODY_BYTES
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.post(
            "/api/v1/register", content=listing, headers={"content-type": "application/json"}
        )
        assert_rest_refusal(response, limit)
        body, headers = call({"query": "q" * 3000}, MODERN)
        assert_mcp_refusal(await http.post("/mcp", content=body, headers=headers), limit)
    assert counts(db_url)[1] == 0


@BOTH_MCP_PATHS
async def test_mcp_refuses_a_body_over_the_limit(live: LiveServer) -> None:
    # A discover_servers call the direct path would take, and one only the SDK answers.
    cases = [
        call({"query": "x" * DEFAULT_MAX_BODY_BYTES}, MODERN),
        call(LISTING | {"description": "x" * DEFAULT_MAX_BODY_BYTES}, MODERN, tool="register_server"),
    ]
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        for body, headers in cases:
            assert_mcp_refusal(await http.post("/mcp", content=body, headers=headers), DEFAULT_MAX_BODY_BYTES)
            response = await http.post("/mcp", content=chunked(body), headers=headers)
            assert "content-length" not in response.request.headers
            assert_mcp_refusal(response, DEFAULT_MAX_BODY_BYTES)
        # Just within the limit, chunked: read whole and answered (the query itself is too long).
        body, headers = call({"query": "x" * 600}, MODERN)
        response = await http.post("/mcp", content=chunked(body, size=100), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["result"]["isError"] is True


@BOTH_MCP_PATHS
async def test_the_sdk_client_hears_the_limit(live: LiveServer) -> None:
    async with mcp_client(live.base_url) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("discover_servers", {"query": "x" * DEFAULT_MAX_BODY_BYTES})
        assert f"larger than {DEFAULT_MAX_BODY_BYTES} bytes" in str(refused.value)
        # The connection is still good for the next call.
        result: Any = await client.call_tool("discover_servers", {"query": "email"})
        assert not result.is_error
