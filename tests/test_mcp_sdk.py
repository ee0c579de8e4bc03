"""What transports/mcp_sdk.py relies on in the mcp SDK, checked on a small server of its own.

Each assertion names the SDK feature it needs, so a new SDK release that moves one says which, and
mcp_sdk.py is the file to adapt. No database, no network: the whole file runs in well under a second.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client.client import Client
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, PaginatedRequestParams, TextContent
from pydantic import BaseModel
from starlette.requests import Request

from mcplookup_mcp.transports import mcp_sdk
from mcplookup_mcp.transports.mcp_sdk import SdkServer


class Answer(BaseModel):
    word: str


class _Server(SdkServer):
    def check_list_tools(self, params: PaginatedRequestParams | None) -> None:
        if params is not None and params.cursor is not None:
            raise MCPError(INVALID_PARAMS, "no cursors here")


def _server() -> _Server:
    server = _Server(name="sdk-check", version="9.9.9")

    @server.tool(name="plain")
    async def plain(word: str = "hello") -> Answer:
        return Answer(word=word)

    @server.tool(name="with_context")
    async def with_context(ctx: Context, word: str = "") -> str:
        return word

    return server


def _request(headers: dict[str, str], method: str = "POST") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": method, "path": "/mcp", "headers": raw, "query_string": b""})


def test_the_registered_tools_are_read_from_the_tool_manager() -> None:
    server = _server()
    assert server.tool_names() == ["plain", "with_context"], "MCPServer._tool_manager.list_tools() changed"
    assert server.registered_tool("plain") is not None, "MCPServer._tool_manager.get_tool() changed"
    assert server.registered_tool("missing") is None, "get_tool() no longer answers None for an unknown tool"
    with pytest.raises(KeyError):
        server.tool_for("missing")
    schema = server.input_schema("plain")
    assert schema["properties"]["word"]["default"] == "hello", "Tool.parameters is no longer the input schema"


async def test_a_tool_value_is_what_the_tool_returned() -> None:
    server = _server()
    value = await server.tool_value("plain", {"word": "hi"})
    assert value == Answer(word="hi"), (
        "_tool_manager.call_tool(..., convert_result=False) or Context(mcp_server=, subscriptions=) changed"
    )
    converted = await server.call_tool("plain", {"word": "hi"})
    assert isinstance(converted, CallToolResult) and converted.structured_content == {"word": "hi"}


def test_cache_hints_and_the_server_info_stamp_come_from_the_low_level_server() -> None:
    server = _server()
    assert server.cache_hint("tools/call") is None, "MCPServer._lowlevel_server.cache_hints changed"
    stamp = server.server_info_stamp
    assert stamp.get("name") == "sdk-check" and stamp.get("version") == "9.9.9", (
        "MCPServer._lowlevel_server.server_info_stamp changed"
    )


async def test_tools_list_passes_through_the_hook() -> None:
    server = _server()
    async with Client(server) as client:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == ["plain", "with_context"]
        with pytest.raises(MCPError, match="no cursors here"):
            # MCPServer._handle_list_tools, overridden in SdkServer, is no longer the tools/list handler.
            await client.list_tools(cursor="c")


async def test_the_transport_checks_host_origin_and_accept() -> None:
    check = mcp_sdk.HostOriginCheck(
        TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=["good.test"])
    )
    good = {"host": "good.test", "content-type": "application/json", "accept": "application/json"}
    assert await check.refusal(_request(good), is_post=True) is None, "TransportSecurityMiddleware changed"
    refused = await check.refusal(_request({**good, "host": "evil.test"}), is_post=True)
    assert refused is not None and refused.status_code == 421, "a foreign Host is no longer refused with 421"
    assert mcp_sdk.accepts_json_reply(_request({"accept": "application/*"})), "check_accept_headers changed"
    assert not mcp_sdk.accepts_json_reply(_request({"accept": "text/event-stream"}))


def _modern_call(version: str) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "plain", "arguments": {}, "_meta": meta},
    }


def test_the_modern_routing_and_the_wire_codecs() -> None:
    assert mcp_sdk.MODERN_VERSIONS and mcp_sdk.HANDSHAKE_VERSIONS, "mcp_types.version changed"
    assert not mcp_sdk.MODERN_VERSIONS & mcp_sdk.HANDSHAKE_VERSIONS
    version = max(mcp_sdk.MODERN_VERSIONS)
    call = _modern_call(version)
    assert call["params"]["_meta"].keys() == mcp_sdk.ENVELOPE_META_KEYS, "the envelope's _meta keys changed"
    headers = {"mcp-protocol-version": version, "mcp-method": "tools/call", "mcp-name": "plain"}
    assert mcp_sdk.is_plain_modern_call(call, _request(headers)), (
        "mcp.shared.inbound's routing ladder changed"
    )
    assert not mcp_sdk.is_plain_modern_call(call, _request({**headers, "mcp-name": "other"}))
    mcp_sdk.validate_tools_call_params(version, call["params"])
    with pytest.raises((ValueError, KeyError)):
        mcp_sdk.validate_tools_call_params(version, {"arguments": {}})
    result = CallToolResult(content=[TextContent(type="text", text="x")])
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    wire = mcp_sdk.serialize_tools_call_result(version, dumped)
    assert wire["content"] == [{"type": "text", "text": "x"}], (
        "mcp_types.methods.serialize_server_result changed"
    )
    assert mcp_sdk.PARAM_HEADER_PREFIX.startswith(b"mcp-param-"), "the Mcp-Param-* header prefix changed"
    assert mcp_sdk.HEADER_MIRROR_KEY == "x-mcp-header"
