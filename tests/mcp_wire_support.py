"""Raw MCP requests for the tests that post to /mcp themselves: a tools/call as each protocol revision
sends it, and the direct path's counters."""

from __future__ import annotations

import json
from typing import Any

from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from prometheus_client import REGISTRY

MODERN = MODERN_PROTOCOL_VERSIONS[-1]


ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def served() -> float:
    return REGISTRY.get_sample_value("mcp_fast_path_total", {"result": "served"}) or 0.0


def declined() -> float:
    return REGISTRY.get_sample_value("mcp_fast_path_total", {"result": "declined"}) or 0.0


def call(
    arguments: Any, version: str, *, request_id: Any = 1, tool: str = "discover_servers", **params: Any
) -> tuple[bytes, dict[str, str]]:
    """A tools/call body and headers as a client of that protocol revision sends them."""
    body_params: dict[str, Any] = {"name": tool, "arguments": arguments} | params
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": version,
    }
    if version in MODERN_PROTOCOL_VERSIONS:
        body_params.setdefault("_meta", ENVELOPE)
        headers |= {"mcp-method": "tools/call", "mcp-name": tool}
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": body_params}
    return json.dumps(body).encode(), headers
