"""Import server.json entries from another registry: idempotent, entry by entry, reporting what it skipped.

Imported entries bypass the registration rules (no DNS claim): they are listed with `source = import`,
unverified, and flagged as imported. Each entry must meet the official server.json schema once the
/v0.1 fixes (server_json.py) are made; the summary names every entry fixed or refused. `mcplookup sync`
takes entries in through the same `admit` and `apply_version`. Remotes on loopback or private addresses are kept but marked blocked.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS, Transport
from mcplookup_mcp.probe.ssrf import is_forbidden_address
from mcplookup_mcp.services.server_json import conform, problems
from mcplookup_mcp.store.repository import Queries, Repository

_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
MAX_NAME = 200
MAX_DESCRIPTION = 2000
UNVERSIONED = "unversioned"


@dataclass
class Skipped:
    index: int
    name: str | None
    reason: str
    # What the entry was, for a person finding it in the file: its name, else the fields it does state.
    entry: str = ""


def _has_value(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_value(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return value not in (None, "")


def describe_entry(entry: object) -> str:
    """One line saying what an entry is: its name, or the fields that hold a value (the first few, cut
    short), or that it holds nothing but its $schema."""
    if not isinstance(entry, dict):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(entry), "number")
        return f"a JSON {kind}, not an object"
    name = entry.get("name")
    if isinstance(name, str) and name:
        return name[:MAX_NAME]
    stated = [str(key) for key, value in entry.items() if key != "$schema" and _has_value(value)]
    if not stated:
        empty = [str(key) for key in entry if key != "$schema"]
        return f"an empty entry: {', '.join(empty)} all empty" if empty else "an empty entry"
    shown = []
    for key in stated[:3]:
        value = json.dumps(entry[key], ensure_ascii=True)
        shown.append(f"{key}={value[:40]}{'...' if len(value) > 40 else ''}")
    more = f" and {len(stated) - 3} more field(s)" if len(stated) > 3 else ""
    return "no name; " + ", ".join(shown) + more


@dataclass
class Fixed:
    """An entry taken in whose /v0.1 copy needed the named fixes (server_json.py) to meet the schema."""

    index: int
    name: str | None
    fixes: list[str]


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    fixed: list[Fixed] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [s.__dict__ for s in self.skipped],
            "fixed": [f.__dict__ for f in self.fixed],
        }


def blocked_url(url: str) -> bool:
    """True for URLs the registry must never hand out as reachable: loopback, private, local names.

    Addresses follow the prober's rule (`ssrf.is_forbidden_address`); names are not resolved at import,
    so only the local ones are caught here, and the prober checks the rest when it resolves them."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return True
    if not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return is_forbidden_address(address) is not None


def entries_of(document: object) -> list[object]:
    """A JSON list of server.json objects, or one object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise InvalidInput("the file must hold a server.json object or a JSON list of them")


def _listing(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The discovery row for one checked entry."""
    remotes = [r for r in entry.get("remotes") or [] if isinstance(r, dict)]
    packages = [p for p in entry.get("packages") or [] if isinstance(p, dict)]
    usable = [r for r in remotes if isinstance(r.get("url"), str) and not blocked_url(r["url"])]
    transport = None
    if remotes and remotes[0].get("type") in REMOTE_TRANSPORTS:
        transport = remotes[0]["type"]
    elif packages:
        transport = Transport.STDIO
    repository = entry.get("repository") if isinstance(entry.get("repository"), dict) else None
    website = entry.get("websiteUrl") if isinstance(entry.get("websiteUrl"), str) else None
    return {
        "name": entry["name"],
        "title": entry.get("title") if isinstance(entry.get("title"), str) else None,
        "description": entry.get("description") or "",
        "version": entry.get("version") or None,
        "endpoint": usable[0]["url"] if usable else None,
        "transport": transport,
        "website_url": website,
        "repository": repository,
        "packages": packages,
        "remotes": remotes,
        "remotes_blocked": len(usable) < len(remotes),
    }


def check_entry(entry: object) -> str | None:
    """Why an entry cannot be imported, or None when it can."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return "it has no name (the name field is missing or empty), and entries are keyed by name"
    if len(name) > MAX_NAME or not _NAME.match(name):
        return "name is not reverse-DNS/short-name (e.g. io.github.user/tool)"
    description = entry.get("description", "")
    if description is not None and not isinstance(description, str):
        return "description is not a string"
    if isinstance(description, str) and len(description) > MAX_DESCRIPTION:
        return f"description is longer than {MAX_DESCRIPTION} characters"
    version = entry.get("version")
    if version is not None and (not isinstance(version, str) or len(version) > 64):
        return "version is not a string of at most 64 characters"
    for key in ("remotes", "packages"):
        value = entry.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{key} is not a list of objects"
    for remote in entry.get("remotes") or []:
        if not isinstance(remote.get("url"), str):
            return "a remote has no url"
    return None


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Numeric parts compare as numbers, others as text: 1.10.0 > 1.9.2."""
    parts = re.split(r"[.+-]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def namespace_domains(name: str) -> list[str]:
    """The domains whose owner holds `name`: its namespace read as a reversed domain, and that
    domain's parents down to two labels (com.example.mcp/x: mcp.example.com, example.com)."""
    labels = [label.lower() for label in name.split("/", 1)[0].split(".") if label]
    labels.reverse()
    return [".".join(labels[i:]) for i in range(0, max(len(labels) - 1, 0))]


def admit(entry: object) -> tuple[str | None, list[str]]:
    """Why an entry cannot be taken in (or None), and the fixes /v0.1 will serve it with."""
    reason = check_entry(entry)
    if reason is not None:
        return reason, []
    assert isinstance(entry, dict)
    served, fixes = conform(entry, entry.get("version") or UNVERSIONED)
    refused = problems(served)
    if refused:
        return f"the official server.json schema refuses it: {refused[0]}", []
    return None, fixes


async def apply_version(
    q: Queries,
    entry: dict[str, Any],
    now: datetime,
    *,
    status: str = "active",
    latest: bool | None = None,
    published_at: datetime | None = None,
) -> bool | str | None:
    """Store one admitted version: True created, False updated, None unchanged, a string: refused for that reason.

    `latest` None picks the highest stored version (numeric parts as numbers); True or False follows
    what the upstream registry said of this version. The discovery row follows the latest version,
    and is `deleted` when that version is. Nothing here overwrites a name held by a registration, or
    any name in the namespace of a domain verified here (the rule, and why: docs/sync.md).
    """
    name = entry["name"]
    version = entry.get("version") or UNVERSIONED
    owner = await q.get_listed_owner(name)
    if owner is not None and owner != "import":
        return "the name belongs to a DNS-verified registration"
    domain = await q.verified_namespace_domain(namespace_domains(name))
    if domain is not None:
        return f"the name is in the namespace of {domain}, a domain verified here"
    version_changed = await q.upsert_server_version(
        {
            "name": name,
            "version": version,
            "server_json": entry,
            "status": status,
            "published_at": published_at,
            "now": now,
        }
    )
    stored = {row["version"]: row["is_latest"] for row in await q.list_server_versions(name)}
    if latest is None:
        chosen = max(stored, key=version_key)
    elif latest:
        chosen = version
    else:
        chosen = next((v for v, is_latest in stored.items() if is_latest), version)
    latest_changed = await q.set_latest_version(name, chosen, now) > 0
    if chosen != version:
        return None if version_changed is None and not latest_changed else False
    listing = _listing(entry) | {"now": now, "status": "deleted" if status == "deleted" else "active"}
    listed = await q.upsert_imported_server(listing)
    if listed is None and version_changed is None:
        return None
    return bool(listed) if listed is not None else bool(version_changed)


class Importer:
    def __init__(self, repo: Repository, clock: Callable[[], datetime]) -> None:
        self.repo = repo
        self.clock = clock

    async def run(
        self, entries: Iterable[object], progress: Callable[[int], None] | None = None
    ) -> ImportSummary:
        summary = ImportSummary()
        now = self.clock()
        for index, entry in enumerate(entries):
            reason, fixes = admit(entry)
            name = entry.get("name") if isinstance(entry, dict) else None
            shown = name if isinstance(name, str) else None
            if reason is None:
                assert isinstance(entry, dict)
                async with self.repo.transaction() as q:
                    outcome = await apply_version(q, entry, now)
                if isinstance(outcome, str):
                    reason = outcome
                elif outcome is None:
                    summary.unchanged += 1
                elif outcome:
                    summary.created += 1
                else:
                    summary.updated += 1
            if reason is not None:
                summary.skipped.append(Skipped(index, shown, reason, describe_entry(entry)))
            elif fixes:
                summary.fixed.append(Fixed(index, shown, fixes))
            if progress is not None:
                progress(index + 1)
        return summary
