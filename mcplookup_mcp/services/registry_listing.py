"""The official MCP Registry read API's rules: which entries, in which order, in which shape.

Entries are server.json documents (stored verbatim for imports, rendered for registered servers) with
the registry's `_meta`. Pages are keyset pages over (name, version).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import InvalidInput, NotFound
from mcplookup_mcp.services.read_your_writes import WriteMarks
from mcplookup_mcp.store.repository import Repository, Row

OFFICIAL = "io.modelcontextprotocol.registry/official"
OURS = "org.mcplookup/discovery"
LIST_FIELDS = ("search", "cursor", "limit", "updated_since", "version", "include_deleted")
DEFAULT_LIMIT = 30
MAX_SEARCH = 200


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry(row: Row) -> dict[str, Any]:
    return {
        "server": row["server_json"],
        "_meta": {
            OFFICIAL: {
                "status": row["status"],
                "publishedAt": _time(row["published_at"]),
                "updatedAt": _time(row["updated_at"]),
                "isLatest": row["is_latest"],
            },
            OURS: {
                "source": row["source"],
                "verified": row["verified"],
                "remotesBlocked": row["remotes_blocked"],
            },
        },
    }


def _cursor(name: str, version: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, version]).encode()).decode().rstrip("=")


def _read_cursor(value: object) -> tuple[str, str] | None:
    if value is None or value == "":
        return None
    bad = InvalidInput(
        "cursor is not valid: pass metadata.nextCursor from the previous page unchanged", field="cursor"
    )
    if not isinstance(value, str) or len(value) > 1000:
        raise bad
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(p, str) for p in decoded)):
        raise bad
    return decoded[0], decoded[1]


def _since(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(
            "updated_since must be an RFC 3339 date-time with a zone, e.g. 2025-08-07T13:15:04Z",
            field="updated_since",
        )
    return parsed


class RegistryListing:
    """Read from a standby when there is one (Repository.standby_read), after the caller's own writes."""

    def __init__(self, repo: Repository, marks: WriteMarks | None = None) -> None:
        self.repo = repo
        self.marks = marks or WriteMarks(repo)

    async def list(self, data: Mapping[str, Any]) -> dict[str, Any]:
        validation.reject_unknown(data, LIST_FIELDS)
        after = _read_cursor(data.get("cursor"))
        search = validation.text(data.get("search"), "search", MAX_SEARCH)
        updated_since = _since(data.get("updated_since"))
        limit = validation.limit(data.get("limit"), default=DEFAULT_LIMIT)
        params = {
            "after_name": after[0] if after else None,
            "after_version": after[1] if after else None,
            "search": f"%{validation.like_escape(search)}%" if search else None,
            "updated_since": updated_since,
            # As the official registry: deleted entries always show to updated_since, so mirrors learn of them.
            "include_deleted": updated_since is not None
            or validation.flag(data.get("include_deleted"), "include_deleted"),
            "version": validation.text(data.get("version"), "version", 255),
            "limit": limit + 1,
        }
        rows = await self.repo.standby_read(lambda q: q.registry_list(params), after=await self.marks.floor())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _cursor(rows[-1]["name"], rows[-1]["version"]) if more and rows else None
        metadata: dict[str, Any] = {"count": len(rows)}
        if next_cursor:
            metadata["nextCursor"] = next_cursor
        return {"servers": [entry(row) for row in rows], "metadata": metadata}

    async def versions(self, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        validation.reject_unknown(data, ("include_deleted",))
        include_deleted = validation.flag(data.get("include_deleted"), "include_deleted")
        checked = validation.server_name(name)
        rows = await self.repo.standby_read(
            lambda q: q.registry_versions(checked, include_deleted), after=await self.marks.floor()
        )
        if not rows:
            raise NotFound(f"no server is named {name}", field="name")
        return {"servers": [entry(row) for row in rows], "metadata": {"count": len(rows)}}

    async def version(self, name: str, version: str, data: Mapping[str, Any]) -> dict[str, Any]:
        validation.reject_unknown(data, ("include_deleted",))
        include_deleted = validation.flag(data.get("include_deleted"), "include_deleted")
        checked = validation.text(version, "version", 255, required=True) or ""
        server = validation.server_name(name)
        row = await self.repo.standby_read(
            lambda q: q.registry_version(server, checked, include_deleted), after=await self.marks.floor()
        )
        if row is None:
            raise NotFound(f"{name} has no version {version}", field="version")
        return entry(row)
