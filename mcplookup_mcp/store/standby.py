"""Streaming standbys (DATABASE_READ_URL) that serve the public reads, each only while it is fit to.

Every CHECK_SECONDS each standby is asked whether it is in recovery and how far it has replayed, and
the primary where its WAL ends. A standby that does not answer, is not in recovery (it was promoted, or
is a plain server named by mistake), or is further behind than MCPLOOKUP_READ_MAX_LAG_SECONDS leaves
the rotation; it comes back at the first check it passes. A read that fails on a standby marks it out
at once (Repository.standby_read then runs the read on the primary).

Lag is measured against the primary's WAL positions at the recent checks: 0 when the standby has
replayed everything the primary had written at this check, else the time since the earliest recent
check whose position it has not replayed yet (so it is exact to one check, CHECK_SECONDS). The time
since the standby replayed its last commit is used only where those checks do not reach back far
enough (the first check, or a standby behind all of them): taken alone it called a standby that was
milliseconds behind "16 s behind" when the primary wrote after 16 s of quiet (bench/standby.py), and
took it out of the rotation for a check.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from mcplookup_mcp.core.metrics import DB_STANDBY_IN_ROTATION, DB_STANDBY_LAG
from mcplookup_mcp.store.repository import STANDBY_CONNECT_WAIT_SECONDS, Queries, Row, lsn_value

CHECK_SECONDS = 1.0
# How long a read that must see a given write waits for a standby to replay it, then reads the primary.
REPLAY_WAIT_SECONDS = 0.25
_REPLAY_POLL_SECONDS = 0.01

log = structlog.get_logger("mcplookup.standby")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Row]]


def standby_label(conninfo: str) -> str:
    """host:port/dbname: the standby's name in metrics and logs (never its password)."""
    parts = conninfo_to_dict(conninfo)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


@dataclass
class Standby:
    label: str
    pool: Pool
    in_rotation: bool = False
    replayed: int = 0
    lag_seconds: float = math.inf
    why_out: str = "not checked yet"
    _down: bool = field(default=False, repr=False)

    def leave(self, why: str) -> None:
        if self.in_rotation:
            log.warning("standby left the rotation", standby=self.label, why=why)
        self.in_rotation, self.why_out = False, why
        DB_STANDBY_IN_ROTATION.labels(self.label).set(0)


class Standbys:
    def __init__(
        self,
        urls: tuple[str, ...],
        make: Callable[[str], Pool],
        max_lag_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_lag_seconds = max_lag_seconds
        self.members = [Standby(standby_label(url), make(url)) for url in urls]
        self._turn = itertools.cycle(range(len(self.members)))
        self._clock = clock
        # (check time, the primary's WAL end then) of the checks of the last _horizon seconds, oldest first.
        self._positions: collections.deque[tuple[float, int]] = collections.deque()
        self._horizon = 2 * max_lag_seconds + 10 * CHECK_SECONDS
        for member in self.members:
            DB_STANDBY_IN_ROTATION.labels(member.label).set(0)
            DB_STANDBY_LAG.labels(member.label).set(math.inf)

    async def open(self) -> None:
        # Without waiting: a standby that is down at start must not keep the service from starting.
        for member in self.members:
            await member.pool.open(wait=False)

    async def close(self) -> None:
        for member in self.members:
            await member.pool.close()

    def pick(self) -> Standby | None:
        """The next standby in rotation, round robin; None when none is."""
        for _ in range(len(self.members)):
            member = self.members[next(self._turn)]
            if member.in_rotation:
                return member
        return None

    async def caught_up(self, member: Standby, q: Queries, lsn: int) -> bool:
        """Whether `member` has replayed `lsn`, waiting up to REPLAY_WAIT_SECONDS for it to."""
        deadline = self._clock() + REPLAY_WAIT_SECONDS
        while True:
            member.replayed = max(member.replayed, await q.standby_replayed())
            if member.replayed >= lsn:
                return True
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(_REPLAY_POLL_SECONDS)

    def failed(self, member: Standby, exc: BaseException) -> None:
        member.leave(f"a read failed: {type(exc).__name__}")

    async def check(self, primary_position: int | None) -> None:
        """Judge every standby now. `primary_position`: where the primary's WAL ends (None when the
        primary does not answer: then a standby's lag is only what its last replayed commit says)."""
        if primary_position is not None:
            now = self._clock()
            self._positions.append((now, primary_position))
            while self._positions and self._positions[0][0] < now - self._horizon:
                self._positions.popleft()
        await asyncio.gather(*(self._check(m, primary_position) for m in self.members))

    def _lag(self, replayed: int, since_last_replay: float | None) -> float:
        """Seconds since the earliest recent check whose WAL end `replayed` falls short of; the time
        since the last replayed commit when the checks kept do not show when the standby fell behind."""
        behind = next((i for i, (_, position) in enumerate(self._positions) if position > replayed), None)
        if behind is None:
            return 0.0
        seconds = self._clock() - self._positions[behind][0]
        if behind > 0:
            return seconds
        replay = math.inf if since_last_replay is None else max(0.0, since_last_replay)
        return max(seconds, replay)

    async def _check(self, member: Standby, primary_position: int | None) -> None:
        try:
            async with member.pool.connection(timeout=STANDBY_CONNECT_WAIT_SECONDS) as conn:
                state = await Queries(conn).standby_state()
        except (psycopg.Error, TimeoutError) as exc:
            member.lag_seconds = math.inf
            DB_STANDBY_LAG.labels(member.label).set(math.inf)
            member.leave(f"does not answer: {type(exc).__name__}")
            return
        if not state["in_recovery"]:
            member.lag_seconds = 0.0
            DB_STANDBY_LAG.labels(member.label).set(0.0)
            member.leave("not in recovery: a primary (promoted?) is not used as a standby")
            return
        member.replayed = max(member.replayed, lsn_value(state["replayed"]))
        since = state["since_last_replay"]  # None: nothing replayed since it started
        if primary_position is not None and member.replayed >= primary_position:
            lag = 0.0
        elif primary_position is not None:
            lag = self._lag(member.replayed, None if since is None else float(since))
        else:
            lag = math.inf if since is None else max(0.0, float(since))
        member.lag_seconds = lag
        DB_STANDBY_LAG.labels(member.label).set(lag)
        if lag > self.max_lag_seconds:
            member.leave(f"replay {lag:.1f} s behind (more than {self.max_lag_seconds:g} s)")
            return
        if not member.in_rotation:
            # Connections made before an outage are dead: drop them before reads are sent again.
            await member.pool.check()
            log.info("standby in rotation", standby=member.label, lag_seconds=round(lag, 3))
        member.in_rotation, member.why_out = True, ""
        DB_STANDBY_IN_ROTATION.labels(member.label).set(1)
