"""Listings for the tests: the registry seed imported, servers written straight into the database, and
plain SQL against what is stored."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from mcplookup_mcp.services.importer import Importer, entries_of
from mcplookup_mcp.services.service import RegistryService, utcnow

ROOT = Path(__file__).resolve().parents[1]
# bench/ is no package: its question set is loaded from the file, as bench/search_quality.py runs.
_spec = importlib.util.spec_from_file_location("search_quality", ROOT / "bench" / "search_quality.py")
assert _spec and _spec.loader
search_quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_quality)
SEED = search_quality.seed_file()


async def import_seed(service: RegistryService) -> None:
    entries = entries_of(json.loads(SEED.read_text(encoding="utf-8")))
    await Importer(service.repo, utcnow).run(entries)


def add(db_url: str, name: str, **fields: Any) -> None:
    """One listed server, written directly (health and trust are the prober's to set)."""
    row: dict[str, Any] = {
        "name": name,
        "description": "",
        "source": "import",
        "status": "active",
        "verified": False,
        "domain": None,
        "capabilities": [],
        "category": None,
        "auth_type": "none",
        "transport": None,
        "remotes": [],
        "packages": [],
        "health_status": "unknown",
        "trust_score": 0,
        "avg_response_time_ms": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    } | fields
    for key in ("remotes", "packages"):
        row[key] = Jsonb(row[key])
    with psycopg.connect(db_url, autocommit=True) as conn:
        if row["domain"]:
            conn.execute(
                "INSERT INTO domains (domain, verified) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (row["domain"], row["verified"]),
            )
        if row["status"] == "pending":
            claim = conn.execute(
                "INSERT INTO domain_verifications (domain, registration_hash, token, record_name, record_value,"
                " server_name, listing, expires_at) VALUES (%s, %s, %s, 'r', 'v', %s, '{}', now() + interval '1 day')"
                " RETURNING id",
                (row["domain"], name.encode(), "tok-" + name, name),
            ).fetchone()
            row["claim_id"] = claim[0] if claim else None
        columns = ", ".join(row)
        values = ", ".join(f"%({k})s" for k in row)
        conn.execute(f"INSERT INTO mcp_servers ({columns}) VALUES ({values})", row)


def sql(db_url: str, statement: str, *args: Any) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(statement, args)


def rows(db_url: str, query: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchall()
