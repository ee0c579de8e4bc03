"""Migrations apply to an empty database on PostgreSQL 15 (the Debian server) and 18 (embedded), once."""

from __future__ import annotations

import asyncio
import os
import re

import psycopg
import pytest
from conftest import create_database, drop_database

from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.sqlfiles import migrations, parse_queries, queries, sql_dir

EXPECTED_TABLES = {
    "domains",
    "domain_verifications",
    "api_keys",
    "mcp_servers",
    "discovery_events",
    "schema_migrations",
}


def _check_fresh_database(admin_url: str, name: str) -> int:
    url = create_database(admin_url, name)
    try:
        versions = [version for version, _ in migrations()]
        assert asyncio.run(apply_migrations(url)) == versions
        assert asyncio.run(apply_migrations(url)) == []
        with psycopg.connect(url) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            server_version = conn.info.server_version
        assert EXPECTED_TABLES <= tables
        assert recorded == versions
        return server_version
    finally:
        drop_database(admin_url, name)


def test_migrations_on_the_test_server(pg_admin_url: str) -> None:
    assert _check_fresh_database(pg_admin_url, f"mcpl_migrate_main_{os.getpid()}") >= 150000


def test_migrations_on_embedded_postgresql_18(embedded_pg_url: str) -> None:
    assert _check_fresh_database(embedded_pg_url, f"mcpl_migrate_embedded_{os.getpid()}") >= 180000


def test_concurrent_migrators_apply_each_migration_once(pg_admin_url: str) -> None:
    url = create_database(pg_admin_url, f"mcpl_migrate_race_{os.getpid()}")
    try:

        async def race() -> list[list[str]]:
            return list(await asyncio.gather(*(apply_migrations(url) for _ in range(4))))

        results = asyncio.run(race())
        applied = [version for result in results for version in result]
        assert sorted(applied) == [version for version, _ in migrations()]
    finally:
        drop_database(pg_admin_url, f"mcpl_migrate_race_{os.getpid()}")


# Numbers that were given to a migration which was never released: never used again, so a database that
# recorded one would not meet a different file under the same number.
RETIRED = {
    10: "numbered for a change that was not merged; never released",
    18: "numbered for a change that was not merged; never released",
    19: "numbered for a change that was not merged; never released",
}
MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9]+(?:_[a-z0-9]+)*\.sql")


def test_migration_files_are_numbered_from_0001_without_gaps() -> None:
    files = sorted(entry.name for entry in (sql_dir() / "migrations").iterdir())
    misnamed = [name for name in files if not MIGRATION_NAME.fullmatch(name)]
    assert not misnamed, f"not named NNNN_snake_case.sql: {misnamed}"
    numbers = [int(name[:4]) for name in files]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not twice, f"numbers used by two migrations: {[f'{n:04d}' for n in twice]}"
    expected = [n for n in range(1, max(numbers) + 1) if n not in RETIRED]
    missing = sorted(set(expected) - set(numbers))
    reused = sorted(set(numbers) & set(RETIRED))
    assert not missing, (
        f"a gap in the numbering: {[f'{n:04d}' for n in missing]} (retire a number in RETIRED, with why)"
    )
    assert not reused, f"retired numbers used again: {[f'{n:04d}' for n in reused]}"
    assert numbers == expected
    assert [version for version, _ in migrations()] == [name.removesuffix(".sql") for name in files]


def test_every_query_is_named_and_described() -> None:
    headers: list[str] = []
    for entry in sorted((sql_dir() / "queries").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        preamble = re.split(r"^-- [a-z0-9_]+ --\s*$", text, maxsplit=1, flags=re.MULTILINE)[0]
        code = [line for line in preamble.splitlines() if line.strip() and not line.startswith("--")]
        assert not code, f"{entry.name}: SQL before the first named query would be lost"
        lines = text.splitlines()
        for i, line in enumerate(lines):
            found = re.fullmatch(r"-- ([a-z0-9_]+) --\s*", line)
            if found:
                headers.append(found.group(1))
                description = lines[i + 1] if i + 1 < len(lines) else ""
                assert re.fullmatch(r"-- \S.*", description), (
                    f"{entry.name}: {found.group(1)} has no description"
                )
    named = [h for h in headers if not h.startswith("_")]  # `_name`: a fragment, included in queries
    assert named and sorted(named) == sorted(queries()), "every header is one query, none lost or merged"
    with pytest.raises(ValueError, match="description"):
        parse_queries("-- broken --\nSELECT 1;", "x.sql")
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- a --\n-- one\nSELECT 1;\n-- a --\n-- two\nSELECT 2;", "x.sql")


def test_a_fragment_is_written_once_and_included_where_named() -> None:
    parsed = parse_queries(
        "-- _where --\n-- a shared condition\nWHERE x = %(x)s\n\n"
        "-- one --\n-- first\nSELECT 1 FROM t\n   -- include _where\n;\n"
        "-- two --\n-- second\nSELECT 2 FROM t\n-- include _where\n",
        "x.sql",
    )
    assert parsed == {"one": "SELECT 1 FROM t\nWHERE x = %(x)s\n;", "two": "SELECT 2 FROM t\nWHERE x = %(x)s"}
    with pytest.raises(ValueError, match="no fragment '_nowhere'"):
        parse_queries("-- one --\n-- first\nSELECT 1\n-- include _nowhere\n", "x.sql")
    # Every discovery query keeps the listed servers through the one filter block.
    assert all(
        "mcp_server_listed(s)" in queries()[name] for name in queries() if name.startswith("browse_by_")
    )


def test_a_fragment_of_one_file_is_included_by_another() -> None:
    shared = {"_columns": "s.id, s.name,"}
    parsed = parse_queries(
        "-- one --\n-- first\nSELECT\n-- include _columns\ns.tools FROM t s\n", "x.sql", shared
    )
    assert parsed == {"one": "SELECT\ns.id, s.name,\ns.tools FROM t s"}
    # The server's columns are written once, in server_shape.sql, for the discovery and registry queries.
    columns = "s.avg_response_time_ms, s.last_health_check_at"
    assert all(
        columns in queries()[name]
        for name in ("get_server_by_name", "get_servers_by_domain", "browse_by_name")
    )
    texts = [
        e.read_text(encoding="utf-8") for e in (sql_dir() / "queries").iterdir() if e.name.endswith(".sql")
    ]
    assert sum(text.count(columns) for text in texts) == 1
