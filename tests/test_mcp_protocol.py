"""/mcp against the MCP specification where the SDK's stateless JSON transport strays from it: GET and
DELETE, JSON-RPC batches per revision, unknown tools and cursors; and the Allow header of every 405."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, mcp_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcplookup_mcp.transports.mcp_http import MAX_BATCH

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN = MODERN_PROTOCOL_VERSIONS[-1]


def message(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        body["id"] = id_
    if params is not None:
        body["params"] = params
    return body


async def post(http: httpx.AsyncClient, body: Any, version: str | None = "2025-06-18") -> httpx.Response:
    headers = HEADERS | ({"MCP-Protocol-Version": version} if version else {})
    return await http.post("/mcp", content=json.dumps(body).encode(), headers=headers)


@BOTH_MCP_PATHS
async def test_get_and_delete_are_405_at_once_and_hold_nothing(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=5) as http:
        for headers in (
            {"Accept": "text/event-stream"},
            {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-03-26"},
            {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-06-18"},
            {"Accept": "text/event-stream", "MCP-Protocol-Version": MODERN},
        ):
            response = await http.get("/mcp", headers=headers)
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST"
            assert not response.headers.get("content-type", "").startswith("text/event-stream")
        deleted = await http.delete("/mcp", headers={"Mcp-Session-Id": "abc"})
        assert deleted.status_code == 405 and deleted.headers["allow"] == "POST"
        assert "POST" in deleted.json()["error"]["message"]
        # Many at once: each is answered and closed (a stream would hold its connection until timeout).
        answers = await asyncio.gather(
            *(http.get("/mcp", headers={"Accept": "text/event-stream"}) for _ in range(50))
        )
        assert {a.status_code for a in answers} == {405}
        # A refused Host stays refused first, as for POST.
        assert (await http.get("/mcp", headers={"Host": "evil.test"})).status_code == 421


@BOTH_MCP_PATHS
async def test_unknown_tool_and_bad_cursor_are_json_rpc_errors(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        unknown = (await post(http, message("tools/call", {"name": "no_such_tool", "arguments": {}}))).json()
        assert "result" not in unknown
        assert unknown["error"]["code"] == -32602
        assert "no_such_tool" in unknown["error"]["message"]
        assert "discover_servers" in unknown["error"]["message"]
        listed = (await post(http, message("tools/list", {"cursor": "not-a-cursor"}))).json()
        assert "result" not in listed and listed["error"]["code"] == -32602
        assert "cursor" in listed["error"]["message"]
        # Without a cursor, the whole list as before.
        whole = (await post(http, message("tools/list", {}))).json()
        assert "discover_servers" in {tool["name"] for tool in whole["result"]["tools"]}
    async with mcp_client(live.base_url) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("no_such_tool", {})
        assert raised.value.code == -32602 and "discover_servers" in raised.value.message
        with pytest.raises(MCPError) as raised:
            await client.list_tools(cursor="not-a-cursor")
        assert raised.value.code == -32602
        assert (await client.list_tools()).tools


@BOTH_MCP_PATHS
@pytest.mark.parametrize("version", [None, "2025-03-26"])
async def test_batches_are_answered_under_2025_03_26(live: LiveServer, version: str | None) -> None:
    batch = [
        message("tools/list", {}, id_="a"),
        message("notifications/initialized", id_=None),
        message("tools/call", {"name": "discover_servers", "arguments": {"query": "email"}}, id_=7),
        message("tools/call", {"name": "discover_servers", "arguments": {"limit": "many"}}, id_=8),
        message("tools/call", {"name": "no_such_tool", "arguments": {}}, id_=9),
        message("initialize", {"protocolVersion": "2025-03-26"}, id_=10),
        "not an object",
    ]
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await post(http, batch, version)
        assert response.status_code == 200, response.text
        replies = response.json()
        by_id = {reply["id"]: reply for reply in replies}
        assert len(replies) == 6  # no reply to the notification
        assert "discover_servers" in {tool["name"] for tool in by_id["a"]["result"]["tools"]}
        assert by_id[7]["result"]["isError"] is False
        assert by_id[7]["result"]["structuredContent"]["count"] == 0
        assert by_id[8]["result"]["isError"] is True
        assert by_id[9]["error"]["code"] == -32602
        assert by_id[10]["error"]["code"] == -32600 and "batch" in by_id[10]["error"]["message"]
        assert by_id[None]["error"]["code"] == -32600

        only_notifications = await post(http, [message("notifications/initialized", id_=None)], version)
        assert only_notifications.status_code == 202

        for refused in ([], [message("tools/list", {}, id_=n) for n in range(MAX_BATCH + 1)]):
            answer = await post(http, refused, version)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == -32600


@BOTH_MCP_PATHS
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", MODERN])
async def test_batches_are_invalid_requests_from_2025_06_18(live: LiveServer, version: str) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await post(http, [message("tools/list", {})], version)
        # A Host the server does not answer for is refused first, batch or not.
        elsewhere = await http.post(
            "/mcp",
            content=json.dumps([message("tools/list", {})]).encode(),
            headers=HEADERS | {"MCP-Protocol-Version": version, "Host": "evil.test"},
        )
        assert elsewhere.status_code == 421
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32600
    if version != MODERN:  # the modern revision's answer is the SDK's own
        assert version in error["message"] and "batch" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/api/v1/servers/com.example/mail", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/api/v1/register", "POST"),
        ("GET", "/api/v1/verify", "POST"),
        ("DELETE", "/api/v1/discover", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
        ("POST", "/v0.1/servers", "GET, HEAD"),
    ],
)
async def test_every_405_says_what_is_allowed(live: LiveServer, method: str, path: str, allowed: str) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
    assert allowed in response.json()["detail"]
