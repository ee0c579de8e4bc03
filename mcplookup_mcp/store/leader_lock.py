"""Leadership across replicas: a PostgreSQL session advisory lock held on a connection of its own.

When the holder's process dies or its connection drops, PostgreSQL ends the session and frees the lock;
another replica's next `hold()` takes it. Driver errors stay here: a lost or unreachable connection is
`LeadershipLost`, and the connection is dropped so the next `hold()` opens a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from psycopg.rows import dict_row

from mcplookup_mcp.store.repository import Queries, Row

CONNECT_TIMEOUT_SECONDS = 10


class LeadershipLost(Exception):
    """The lock's connection failed or did not answer in time; `reason` names the failure."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class LeaderLock:
    def __init__(self, conninfo: str, lock_id: int, *, application_name: str, check_seconds: float) -> None:
        self.conninfo = conninfo
        self.lock_id = lock_id
        self.application_name = application_name
        self.check_seconds = check_seconds
        self._conn: psycopg.AsyncConnection[Row] | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    async def hold(self) -> bool:
        """Take the lock, or confirm it is still ours; False when another session holds it.
        Raises `LeadershipLost` when the connection fails (the lock, if it was ours, is gone with it)."""
        try:
            if self._conn is None or self._conn.closed:
                self._held = False
                self._conn = await psycopg.AsyncConnection.connect(
                    self.conninfo,
                    autocommit=True,
                    application_name=self.application_name,
                    row_factory=dict_row,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    # A silently dropped network is noticed by TCP keepalives, on both ends.
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
            async with asyncio.timeout(self.check_seconds):
                if self._held:
                    # Still ours only while the session lives: a dead connection means the lock is gone.
                    await Queries(self._conn).ping()
                    return True
                self._held = await Queries(self._conn).try_advisory_lock(self.lock_id)
            return self._held
        except (psycopg.Error, TimeoutError) as exc:
            self._held = False
            await self.close()
            raise LeadershipLost(type(exc).__name__) from None

    async def release(self) -> None:
        """Give the lock up and close the connection."""
        if self._held and self._conn is not None and not self._conn.closed:
            # Unlocked explicitly: closing the connection alone frees the lock only once the server
            # process has exited, a moment later, and a replica asking meanwhile would be refused.
            with contextlib.suppress(psycopg.Error, TimeoutError):
                async with asyncio.timeout(self.check_seconds):
                    await Queries(self._conn).advisory_unlock(self.lock_id)
        self._held = False
        await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    def backend_pid(self) -> int | None:
        """The lock connection's server process id (operators match it in pg_stat_activity)."""
        return None if self._conn is None or self._conn.closed else self._conn.info.backend_pid
