"""/mcp spoken by a hand-written JSON-RPC client over plain HTTP, independent of the SDK's client."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import BOTH_MCP_PATHS, LiveServer

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def rpc(
    http: httpx.AsyncClient, method: str, params: dict[str, Any] | None = None, id_: int = 1
) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = params
    response = await http.post("/mcp", json=body, headers=HEADERS | {"MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@BOTH_MCP_PATHS
async def test_handshake_list_and_call_over_plain_http(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        init = await rpc(
            http,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "wire-test", "version": "1"},
            },
        )
        assert init["result"]["serverInfo"]["name"] == "mcplookup"
        assert "discover_servers" in init["result"]["instructions"]
        # Stateless: no session id is needed for the next requests.
        notified = await http.post(
            "/mcp", headers=HEADERS, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert notified.status_code == 202
        tools = (await rpc(http, "tools/list", {}, 2))["result"]["tools"]
        by_name = {tool["name"]: tool for tool in tools}
        assert by_name["discover_servers"]["annotations"]["readOnlyHint"] is True
        assert by_name["discover_servers"]["outputSchema"]["type"] == "object"

        call = await rpc(http, "tools/call", {"name": "discover_servers", "arguments": {"query": "email"}}, 3)
        assert call["result"]["isError"] is False
        content = call["result"]["structuredContent"]
        assert content["servers"] == [] and content["count"] == 0 and content["next_cursor"] is None

        bad = await rpc(http, "tools/call", {"name": "discover_servers", "arguments": {"limit": "many"}}, 4)
        assert bad["result"]["isError"] is True
        # The same refusal as REST's (core/discover_args.py), after the SDK's opening of a failed tool.
        assert bad["result"]["content"][0]["text"].endswith(
            "limit: 'many' is out of range; allowed: a whole number from 1 to 100; send a number such as 10, "
            "or leave it out for 10"
        )
        assert "errors.pydantic.dev" not in bad["result"]["content"][0]["text"]

        extra = await rpc(http, "tools/call", {"name": "get_server", "arguments": {"nme": "x/y"}}, 5)
        assert extra["result"]["isError"] is True
        assert "does not take nme" in extra["result"]["content"][0]["text"]

        unknown = await rpc(http, "tools/call", {"name": "no_such_tool", "arguments": {}}, 6)
        assert unknown["error"]["code"] == -32602 and "no_such_tool" in unknown["error"]["message"]
