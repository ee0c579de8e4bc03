"""The discovery generation, pushed: one listening connection per process, so a cached answer needs no
round trip to PostgreSQL to know it is still current.

The connection LISTENs on the channel the generation triggers notify (migration 0020) and reads the
sequence whenever told, and every `refresh` seconds besides: that read also shows the connection still
works. A value is trusted for `refresh + READ_TIMEOUT_SECONDS` after the read that confirmed it; past
that, or while the connection is down (it reconnects by itself), `current()` is None and the caller
reads the sequence per request, as without the feed. So a write shows on every replica once its
notification arrives (milliseconds), and never later than `refresh + READ_TIMEOUT_SECONDS` whatever
happens to the channel. This process's own writes are seen at once: the repository reads the sequence
after each transaction it commits (`observe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import psycopg
import structlog
from psycopg.rows import dict_row

from mcplookup_mcp.core.metrics import DISCOVERY_GENERATION_PUSH_UP
from mcplookup_mcp.store.repository import CONNECT_TIMEOUT_SECONDS, Queries, Row

log = structlog.get_logger("mcplookup.generation_feed")

READ_TIMEOUT_SECONDS = 2.0
# How the listener shows in pg_stat_activity.
APPLICATION_NAME = "mcplookup-generation-feed"
RECONNECT_FIRST_SECONDS = 0.25
RECONNECT_LAST_SECONDS = 5.0


class GenerationFeed:
    def __init__(self, conninfo: str, refresh: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.conninfo = conninfo
        self.refresh = refresh
        self._clock = clock
        self._value: int | None = None
        self._confirmed = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Row] | None = None

    @property
    def trusted_for(self) -> float:
        return self.refresh + READ_TIMEOUT_SECONDS

    def current(self) -> int | None:
        """The generation, if the listener confirmed it recently enough; else None (read it yourself)."""
        if self._value is None or self._clock() - self._confirmed > self.trusted_for:
            return None
        return self._value

    def observe(self, value: int) -> None:
        """A value read after a commit of this process: generations only grow."""
        if self._value is not None and value > self._value:
            self._value = value

    def doubt(self) -> None:
        """A commit of this process whose generation could not be read: read per request until the
        listener confirms a value again."""
        self._confirmed = float("-inf")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                # A connection that worked is retried at once; one that never did, less and less often.
                delay = RECONNECT_FIRST_SECONDS if self._value is not None else delay
                # Down: callers read per request until the listener is back and has read a value.
                self._value, self._confirmed = None, float("-inf")
                DISCOVERY_GENERATION_PUSH_UP.set(0)
                log.warning("discovery generation listener lost", error=type(exc).__name__, retry_s=delay)
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_LAST_SECONDS)

    async def _listen(self) -> None:
        self._conn = conn = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
        )
        queries = Queries(conn)
        await queries.listen_discovery_generation()
        while True:
            # The notification may arrive before the read or during it: either way this read follows it.
            value = await asyncio.wait_for(queries.discovery_generation(), READ_TIMEOUT_SECONDS)
            if self._value is None:
                log.info("discovery generation listener up", generation=value)
                DISCOVERY_GENERATION_PUSH_UP.set(1)
            self._value = value if self._value is None else max(self._value, value)
            self._confirmed = self._clock()
            # Wait for one notification (those that came during the read are delivered at once), or
            # for `refresh` seconds; a dropped connection raises here.
            async for _ in conn.notifies(timeout=self.refresh, stop_after=1):
                pass

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
