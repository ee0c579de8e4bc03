"""The listed rule (active, and verified or imported) and the probed rule are SQL functions, written once
(migration "listed_rule"), inlined by the planner, and every statement that lists, counts or probes
servers agrees with them."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.sqlfiles import migrations, queries, sql_dir

# A copy of the rule, in either order, with or without a table alias.
_LISTED_COPY = re.compile(
    r"verified\s+OR\s+(\w+\.)?source\s*=\s*'import'|source\s*=\s*'import'\s+OR\s+(\w+\.)?verified", re.I
)
_PROBED_COPY = re.compile(r"transport\s+IN\s*\(\s*'streamable-http'", re.I)


def _later_sql() -> dict[str, str]:
    """Every query file, and the migrations from the one defining the rules on (older ones are history)."""
    found = {
        e.name: e.read_text(encoding="utf-8")
        for e in (sql_dir() / "queries").iterdir()
        if e.name.endswith(".sql")
    }
    versions = migrations()
    first = next(i for i, (_, text) in enumerate(versions) if "FUNCTION mcp_server_listed" in text)
    found |= {version: text for version, text in versions[first:]}
    return found


def _without_definitions(text: str) -> str:
    return re.sub(r"CREATE FUNCTION mcp_server_(listed|probed)\(.*?\$\$.*?\$\$;", "", text, flags=re.S)


def test_each_rule_is_written_once() -> None:
    copies = {
        name: [m.group(0) for m in (*_LISTED_COPY.finditer(body), *_PROBED_COPY.finditer(body))]
        for name, text in _later_sql().items()
        if (body := _without_definitions(text))
    }
    assert {name: found for name, found in copies.items() if found} == {}
    defined = "".join(_later_sql().values())
    assert defined.count("CREATE FUNCTION mcp_server_listed(") == 1
    assert defined.count("CREATE FUNCTION mcp_server_probed(") == 1
    users = [name for name, query in queries().items() if "mcp_server_listed(" in query]
    assert {"browse_by_name", "discover_ranked", "capability_counts", "discovery_stats"} <= set(users)
    assert {"count_listed_servers", "embedding_progress"} <= set(users)


def test_the_rules_are_inlined_so_plans_keep_their_indexes(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for rule in ("listed", "probed"):
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    f"EXPLAIN (VERBOSE) SELECT s.id FROM mcp_servers s WHERE mcp_server_{rule}(s)"
                )
            )
            # Inlined: the plan tests the row's columns (or proves a partial index's predicate), no call.
            assert f"mcp_server_{rule}" not in plan and ("s.status" in plan or "s.transport" in plan), plan
        # The probed rule still proves the scheduler's partial index usable.
        conn.execute("SET enable_seqscan = off")
        now = datetime.now(UTC)
        plan = "\n".join(
            r[0]
            for r in psycopg.ClientCursor(conn).execute(
                "EXPLAIN " + queries()["claim_due_servers"], {"now": now, "lease_until": now, "limit": 5}
            )
        )
        assert "mcp_servers_next_probe_idx" in plan, plan


def _insert(
    conn: psycopg.Connection[Any], name: str, status: str, verified: bool, source: str, remote: bool
) -> None:
    domain = f"{name.split('/')[1]}.example"
    conn.execute("INSERT INTO domains (domain, verified) VALUES (%s, %s)", (domain, verified))
    claim = None
    if status == "pending":
        row = conn.execute(
            "INSERT INTO domain_verifications (domain, registration_hash, token, record_name, record_value,"
            " server_name, listing, expires_at) VALUES (%s, %s, %s, 'r', 'v', %s, '{}', now() + interval '1 day')"
            " RETURNING id",
            (domain, name.encode(), "tok-" + name, name),
        ).fetchone()
        claim = row[0] if row else None
    conn.execute(
        "INSERT INTO mcp_servers (name, description, domain, endpoint, transport, transports, capabilities,"
        " category, source, status, claim_id, verified, remotes)"
        " VALUES (%s, 'Reads invoices', %s, %s, %s, %s, '{invoices}', 'finance', %s, %s, %s, %s, %s)",
        (
            name,
            domain,
            f"https://mcp.{domain}/mcp" if remote else None,
            "streamable-http" if remote else "stdio",
            ["streamable-http" if remote else "stdio"],
            source,
            status,
            claim,
            verified,
            Jsonb([]),
        ),
    )


async def test_every_use_agrees_with_the_rules(service: RegistryService, db_url: str) -> None:
    kinds = list(
        itertools.product(
            ("active", "pending", "deleted"), (True, False), ("register", "import"), (True, False)
        )
    )
    listed, pending, probed, verified_ones, imported = set(), set(), set(), set(), set()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i, (status, verified, source, remote) in enumerate(kinds):
            name = f"io.example/s{i}-{status}-{'v' if verified else 'u'}-{source}{'-r' if remote else ''}"
            _insert(conn, name, status, verified, source, remote)
            # As docs/discovery.md and docs/health.md state them.
            if status == "active" and (verified or source == "import"):
                listed.add(name)
                if verified:
                    verified_ones.add(name)
                if source == "import":
                    imported.add(name)
            if status == "pending":
                pending.add(name)
            if status == "active" and remote:
                probed.add(name)
        by_function = {
            r[0] for r in conn.execute("SELECT name FROM mcp_servers s WHERE mcp_server_listed(s)")
        }
        posted = {
            r[0]
            for r in conn.execute(
                "SELECT s.name FROM mcp_servers s WHERE EXISTS (SELECT 1 FROM search_postings p WHERE p.server_id = s.id)"
            )
        }
    assert by_function == listed and posted == listed

    async def names(**data: Any) -> set[str]:
        return {s.name for s in (await service.discover(data | {"limit": 100}, transport="test")).servers}

    assert await names() == listed
    assert await names(query="invoices") == listed
    assert await names(query="invoices", category="finance") == listed
    assert await names(include_pending=True) == listed | pending
    assert await names(query="invoices", include_pending=True) == listed | pending

    counts = await service.discovery.browse_capabilities({})
    assert {(c.value, c.servers) for c in counts.capabilities} == {("invoices", len(listed))}
    assert {(c.value, c.servers) for c in counts.categories} == {("finance", len(listed))}
    stats = await service.discovery.stats()
    assert stats.listed_servers == len(listed) == await service.listed_server_count()
    assert (stats.verified_servers, stats.imported_servers) == (len(verified_ones), len(imported))
    assert sum(stats.transports.values()) == len(listed) and stats.pending_claims == len(pending)
    async with service.repo.read() as q:
        progress = await q.embedding_progress("any-model")
    assert progress["embedded"] + progress["waiting"] == len(listed)

    now = datetime.now(UTC)
    async with service.repo.transaction() as q:
        claimed = await q.claim_due_servers(now, now + timedelta(minutes=5), 100)
    assert {r["name"] for r in claimed} == probed
