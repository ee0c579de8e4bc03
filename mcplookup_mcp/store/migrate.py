"""Apply numbered migrations in order, once each, under an advisory lock."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from mcplookup_mcp.store.repository import Queries, Row
from mcplookup_mcp.store.sqlfiles import migrations

# Any constant shared by every replica; chosen once, never to change.
_MIGRATION_LOCK_ID = 7_245_118_301


async def apply_migrations(conninfo: str) -> list[str]:
    """Apply the pending migrations; return the versions applied now (empty when up to date)."""
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
        q = Queries(conn)
        await q.advisory_lock(_MIGRATION_LOCK_ID)
        try:
            await q.create_migrations_table()
            done = await q.applied_migrations()
            for version, sql in migrations():
                if version in done:
                    continue
                async with conn.transaction():
                    # A migration file is run whole, as written: it is the one SQL not split into queries.
                    await conn.execute(sql.encode())
                    await q.record_migration(version)
                applied_now.append(version)
        finally:
            await q.advisory_unlock(_MIGRATION_LOCK_ID)
    return applied_now


async def pending_migrations(conn: psycopg.AsyncConnection[Row]) -> list[str]:
    """Versions not yet applied; raises if the bookkeeping table is missing."""
    done = await Queries(conn).applied_migrations()
    return [version for version, _ in migrations() if version not in done]
