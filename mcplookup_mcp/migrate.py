"""Apply numbered migrations in order, once each, under an advisory lock."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

from mcplookup_mcp.sqlfiles import migrations

# Any constant shared by every replica; chosen once, never to change.
_MIGRATION_LOCK_ID = 7_245_118_301

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def apply_migrations(conninfo: str) -> list[str]:
    """Apply the pending migrations; return the versions applied now (empty when up to date)."""
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_ID,))
        try:
            await conn.execute(_CREATE_TABLE)
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, sql in migrations():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.encode())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_ID,))
    return applied_now


async def pending_migrations(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Versions not yet applied; raises if the bookkeeping table is missing."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT version FROM schema_migrations")
    done = {row[0] for row in await cur.fetchall()}
    return [version for version, _ in migrations() if version not in done]
