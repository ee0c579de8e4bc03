"""The official MCP Registry read API's rules: which entries, in which order, in which shape.

Entries are server.json documents (stored verbatim for imports, rendered for registered servers) with
the registry's `_meta`. Pages are keyset pages over (name, version).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import InvalidInput, NotFound, RegistryError
from mcplookup_mcp.services.read_your_writes import WriteMarks
from mcplookup_mcp.services.server_json import conform, problems
from mcplookup_mcp.store.repository import Repository, Row

log = structlog.get_logger("mcplookup.registry")

OFFICIAL = "io.modelcontextprotocol.registry/official"
OURS = "org.mcplookup/discovery"
LIST_FIELDS = ("search", "cursor", "limit", "updated_since", "version", "include_deleted")
DEFAULT_LIMIT = 30
# The official name pattern: a name outside it cannot be held here, so it is simply not found.
_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
MAX_SEARCH = 200


# The official handler (internal/api/handlers/v0/servers.go, registered at /v0 and /v0.1 alike) answers
# huma errors: title "Not Found" or "Bad Request", the detail below; the same title, status and detail here.
class ServerNotFound(NotFound):
    """Not Found"""

    def extensions(self) -> dict[str, Any]:
        # The official registry's 404 body: {"error": "Server not found"} beside the problem's members.
        return super().extensions() | {"error": "Server not found"}


class DeletedAlwaysListed(RegistryError):
    """Bad Request"""


def _not_found() -> ServerNotFound:
    return ServerNotFound("Server not found", field="name")


def _held_name(name: str) -> bool:
    return len(name) <= 200 and _NAME.match(name) is not None


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Checking one seed entry against the schema took ~1.2 ms (a 100-entry page, 127 ms): each stored version
# is checked once per process and its conforming copy kept, keyed by what changes when it changes.
_CHECKED_MAX = 20_000
_checked: dict[tuple[str, str, datetime], tuple[dict[str, Any], list[str], list[str]]] = {}


def _conforming(row: Row) -> tuple[dict[str, Any], list[str], list[str]]:
    key = (row["name"], row["version"], row["updated_at"])
    found = _checked.get(key)
    if found is None:
        server, fixes = conform(row["server_json"], row["version"])
        found = (server, fixes, problems(server))
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[key] = found
    return found


def entry(row: Row) -> dict[str, Any] | None:
    """The /v0.1 item for one stored version: server.json made schema-valid, or None when it cannot be."""
    server, fixes, refused = _conforming(row)
    if refused:
        log.warning(
            "registry entry left out of /v0.1", name=row["name"], version=row["version"], problem=refused[0]
        )
        return None
    ours: dict[str, Any] = {
        "source": row["source"],
        "verified": row["verified"],
        "remotesBlocked": row["remotes_blocked"],
    }
    if fixes:
        ours["fixed"] = fixes
    return {
        "server": server,
        "_meta": {
            OFFICIAL: {
                "status": row["status"],
                "publishedAt": _time(row["published_at"]),
                "updatedAt": _time(row["updated_at"]),
                "isLatest": row["is_latest"],
            },
            OURS: ours,
        },
    }


def _entries(rows: list[Row]) -> list[dict[str, Any]]:
    return [item for item in map(entry, rows) if item is not None]


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
    except (ValueError, binascii.Error, RecursionError):  # a cursor nested past the parser's limit
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
        # As the official registry: deleted entries always show to updated_since, so mirrors learn of
        # them; asking for updated_since without them is refused rather than silently answered with them.
        include_deleted = validation.flag(
            data.get("include_deleted"), "include_deleted", default=updated_since is not None
        )
        if updated_since is not None and not include_deleted:
            raise DeletedAlwaysListed(
                "Cannot set include_deleted=false when using updated_since "
                "(incremental sync requires deleted servers)",
                field="include_deleted",
            )
        params = {
            "after_name": after[0] if after else None,
            "after_version": after[1] if after else None,
            "search": f"%{validation.like_escape(search)}%" if search else None,
            "updated_since": updated_since,
            "include_deleted": include_deleted,
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
        return {"servers": _entries(rows), "metadata": metadata}

    async def versions(self, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        validation.reject_unknown(data, ("include_deleted",))
        include_deleted = validation.flag(data.get("include_deleted"), "include_deleted")
        if not _held_name(name):
            raise _not_found()
        rows = await self.repo.standby_read(
            lambda q: q.registry_versions(name, include_deleted), after=await self.marks.floor()
        )
        items = _entries(rows)
        if not items:
            raise _not_found()
        return {"servers": items, "metadata": {"count": len(items)}}

    async def version(self, name: str, version: str, data: Mapping[str, Any]) -> dict[str, Any]:
        validation.reject_unknown(data, ("include_deleted",))
        include_deleted = validation.flag(data.get("include_deleted"), "include_deleted")
        if not _held_name(name) or not version or len(version) > 255 or not version.isprintable():
            raise _not_found()
        row = await self.repo.standby_read(
            lambda q: q.registry_version(name, version, include_deleted), after=await self.marks.floor()
        )
        item = entry(row) if row is not None else None
        if item is None:
            raise _not_found()
        return item
