"""server.json as the official registry's schema allows it: the fixes /v0.1 applies, and the check.

Entries are stored as they were published (the native API and the server's page show the full text);
`conform` makes the copy /v0.1 serves, and `problems` checks a document against the vendored schema
(`schemas/server.schema.json`, 2025-12-11). The fixes, each named in the answer's `_meta`:

- a description over 100 characters is cut at a word boundary and ends with "…" (`description-shortened`);
- an empty or missing description is filled with the title, else the name (`description-filled`);
- a title over 100 characters is shortened the same way, an empty one dropped (`title-shortened`, `title-dropped`);
- a remote whose `type` is not `streamable-http` or `sse` (`type: ""` in the 2025-05-16 seed) is dropped,
  since no client can know how to speak to it (`remote-dropped`);
- a missing version is the stored one (`unversioned` when none was published) (`version-filled`).

What still fails the schema after these fixes is refused at import and sync, and left out of /v0.1.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
MAX_TEXT = 100
_ELLIPSIS = "…"


@cache
def _validator() -> Any:
    text = resources.files("mcplookup_mcp.services").joinpath("schemas/server.schema.json").read_text("utf-8")
    schema = json.loads(text)
    return jsonschema.Draft7Validator(schema)


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """At most `limit` characters: cut at the last space of the allowed length when there is a fair one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + _ELLIPSIS


def conform(document: Mapping[str, Any], version: str) -> tuple[dict[str, Any], list[str]]:
    """The copy of `document` /v0.1 serves, and the names of the fixes it needed (none: unchanged)."""
    doc = copy.deepcopy(dict(document))
    fixes: list[str] = []
    title = doc.get("title")
    if "title" in doc and (not isinstance(title, str) or not title.strip()):
        del doc["title"]
        fixes.append("title-dropped")
    elif isinstance(title, str) and len(title) > MAX_TEXT:
        doc["title"] = shorten(title)
        fixes.append("title-shortened")
    description = doc.get("description")
    if not isinstance(description, str) or not description.strip():
        name = doc.get("name") if isinstance(doc.get("name"), str) else ""
        doc["description"] = shorten(doc.get("title") or name or "MCP server")
        fixes.append("description-filled")
    elif len(description) > MAX_TEXT:
        doc["description"] = shorten(description)
        fixes.append("description-shortened")
    remotes = doc.get("remotes")
    if isinstance(remotes, list):
        kept = [r for r in remotes if isinstance(r, dict) and r.get("type") in REMOTE_TRANSPORTS]
        if len(kept) < len(remotes):
            fixes.append("remote-dropped")
            if kept:
                doc["remotes"] = kept
            else:
                del doc["remotes"]
    if not isinstance(doc.get("version"), str) or not doc["version"]:
        doc["version"] = version
        fixes.append("version-filled")
    return doc, fixes


def problems(document: object) -> list[str]:
    """What the official schema refuses in `document`, one line each (none: valid)."""
    found = []
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        found.append(f"{where}: {error.message[:200]}")
    return found
