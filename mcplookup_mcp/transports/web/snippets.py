"""Connection snippets for a server's page: Claude Code, Claude Desktop, Cursor, VS Code, curl.

Each client's own configuration shape: Claude Desktop and Cursor read `mcpServers` (Claude Desktop's
file starts local stdio servers only, so a remote endpoint goes through the `mcp-remote` bridge; Cursor
takes a `url`), VS Code reads `servers` with an explicit `type` (`stdio`, `http`, `sse`).

Endpoints, package names and variable names are the operator's text: shell words are quoted with
`shlex.quote` and JSON is built by `json.dumps`, so a hostile value stays one inert argument when pasted.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from mcplookup_mcp.core.models import ServerOut
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS

# What the official registry's package types are run with (stdio servers).
_RUNNERS: dict[str, tuple[str, list[str]]] = {
    "npm": ("npx", ["-y"]),
    "pypi": ("uvx", []),
    "oci": ("docker", ["run", "-i", "--rm"]),
}
_ALIAS = re.compile(r"[^a-z0-9_]+")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}


@dataclass(frozen=True)
class Snippet:
    key: str
    label: str
    text: str


@dataclass(frozen=True)
class Snippets:
    items: list[Snippet]
    notes: list[str]


def alias_of(name: str) -> str:
    """A short client-side name for the server: the last part of its registry name, shell-safe."""
    alias = _ALIAS.sub("-", name.rsplit("/", 1)[-1].lower()).strip("-_")[:40]
    return alias or "server"


def connection_snippets(server: ServerOut, public_url: str) -> Snippets:
    alias = alias_of(server.name)
    listing_url = f"{public_url}/api/v1/servers/{quote(server.name, safe='/')}"
    lookup = f"curl -s {shlex.quote(listing_url)}"
    if server.endpoint and server.transport in REMOTE_TRANSPORTS:
        return _remote(server, server.endpoint, alias, lookup)
    package = next(
        (p for p in server.packages if isinstance(p, dict) and p.get("registryType") in _RUNNERS), None
    )
    if package is not None and isinstance(package.get("identifier"), str):
        return _package(package, alias, lookup)
    return Snippets(
        items=[Snippet("lookup", "curl: this listing", lookup)],
        notes=["This listing names no remote endpoint or package MCPLookup knows how to run."],
    )


def _remote(server: ServerOut, endpoint: str, alias: str, lookup: str) -> Snippets:
    kind = "http" if server.transport == "streamable-http" else "sse"
    url = shlex.quote(endpoint)
    if server.transport == "streamable-http":
        probe_label = "curl: MCP handshake (initialize)"
        probe = (
            f"curl -s -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n"
            f"  -H 'Accept: application/json, text/event-stream' \\\n"
            f"  -d {shlex.quote(json.dumps(_INITIALIZE, separators=(',', ':')))}"
        )
    else:
        probe_label = "curl: open the SSE stream"
        probe = f"curl -sN -H 'Accept: text/event-stream' {url}"
    notes = []
    if server.auth_type != "none":
        notes.append(
            f"The operator says this server needs credentials ({server.auth_type}): "
            "see its documentation for how to pass them."
        )
    bridge = ["-y", "mcp-remote", endpoint] + ([] if kind == "http" else ["--transport", "sse-only"])
    notes.append(
        "Claude Desktop's configuration file starts local programs only: the mcp-remote bridge (Node.js) "
        "connects it to this endpoint. Claude's Settings → Connectors can add the URL directly."
    )
    return Snippets(
        items=[
            Snippet("claude", "Claude Code", f"claude mcp add --transport {kind} {alias} {url}"),
            Snippet(
                "claude-desktop",
                "Claude Desktop (claude_desktop_config.json)",
                _json({"mcpServers": {alias: {"command": "npx", "args": bridge}}}),
            ),
            Snippet("cursor", "Cursor (.cursor/mcp.json)", _json({"mcpServers": {alias: {"url": endpoint}}})),
            Snippet(
                "vscode",
                "VS Code (.vscode/mcp.json)",
                _json({"servers": {alias: {"type": kind, "url": endpoint}}}),
            ),
            Snippet("curl", probe_label, probe),
            Snippet("lookup", "curl: this listing", lookup),
        ],
        notes=notes,
    )


def _package(package: dict[str, Any], alias: str, lookup: str) -> Snippets:
    kind = str(package["registryType"])
    identifier = str(package["identifier"])
    version = package.get("version")
    command, args = _RUNNERS[kind]
    target = identifier
    if isinstance(version, str) and version and kind in ("npm", "pypi"):
        target = f"{identifier}@{version}"
    args = [*args, target]
    env_names = [
        str(v["name"])
        for v in package.get("environmentVariables") or []
        if isinstance(v, dict) and isinstance(v.get("name"), str) and _ENV_NAME.match(v["name"])
    ]
    env_flags = "".join(f" -e {name}=..." for name in env_names)
    if kind == "oci":
        # docker passes the container only the variables named with -e.
        args = [*args[:-1], *(a for name in env_names for a in ("-e", name)), args[-1]]
    config: dict[str, Any] = {"command": command, "args": args}
    if env_names:
        config["env"] = {name: "..." for name in env_names}
    notes = [f"Runs on your machine over stdio, from the {kind} package {identifier}."]
    if package.get("packageArguments"):
        notes.append("The package declares arguments of its own: see its documentation.")
    return Snippets(
        items=[
            Snippet(
                "claude",
                "Claude Code",
                f"claude mcp add {alias}{env_flags} -- {shlex.join([command, *args])}",
            ),
            Snippet(
                "claude-desktop",
                "Claude Desktop (claude_desktop_config.json)",
                _json({"mcpServers": {alias: config}}),
            ),
            Snippet("cursor", "Cursor (.cursor/mcp.json)", _json({"mcpServers": {alias: config}})),
            Snippet(
                "vscode",
                "VS Code (.vscode/mcp.json)",
                _json({"servers": {alias: {"type": "stdio", **config}}}),
            ),
            Snippet("lookup", "curl: this listing", lookup),
        ],
        notes=notes,
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2)
