"""The background loop that probes listed servers: one leader across replicas.

Leadership is a PostgreSQL session advisory lock held on a connection of its own (`store.leader_lock`).
When the leader's process dies or its connection drops, PostgreSQL ends the session and frees the lock;
another replica's next attempt takes it. Work is claimed with `FOR UPDATE SKIP LOCKED` and a lease (`next_probe_at` pushed
ahead), so even two leaders for a moment (a network partition) would not probe the same server twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import structlog

from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.core.metrics import SCHEDULER_LAST_ROUND, SCHEDULER_LEADER
from mcplookup_mcp.services.analytics import prune_events
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.third_party import ThirdPartyReader
from mcplookup_mcp.services.upstream_sync import UpstreamReport, UpstreamSync
from mcplookup_mcp.store.leader_lock import LeaderLock, LeadershipLost

log = structlog.get_logger("mcplookup.scheduler")

# Any constant shared by every replica; chosen once, never to change (the migration lock is another).
LEADER_LOCK_ID = 7_245_118_302
PRUNE_EVERY_SECONDS = 3600.0
MAX_POLL_SECONDS = 10.0
LEADER_CHECK_SECONDS = 10.0
# How the leader connection shows in pg_stat_activity.
APPLICATION_NAME = "mcplookup-scheduler"


# Each refused or fixed entry is logged by name, up to this many a run (a first pass may fix thousands);
# `mcplookup sync` prints every one.
MAX_ENTRY_LOGS = 200


def _log_entries(report: UpstreamReport) -> None:
    named = [("refused", name, reason) for name, reason in report.refused]
    named += [("fixed", name, ", ".join(fixes)) for name, fixes in report.fixed]
    for what, name, why in named[:MAX_ENTRY_LOGS]:
        log.info(f"upstream entry {what}", upstream=report.upstream, name=name, why=why)
    if len(named) > MAX_ENTRY_LOGS:
        log.info("upstream entries not logged", upstream=report.upstream, count=len(named) - MAX_ENTRY_LOGS)


class Scheduler:
    def __init__(
        self,
        monitor: HealthMonitor,
        conninfo: str,
        *,
        poll_seconds: float | None = None,
        rng: Callable[[], float] = random.random,
        third_party: ThirdPartyReader | None = None,
        sync: UpstreamSync | None = None,
    ) -> None:
        self.monitor = monitor
        self.third_party = third_party
        self._third_party_round: asyncio.Task[int] | None = None
        # Following upstream registries runs beside the probes, on the leader only, in a task of its own:
        # a long pass must not hold up a probing round.
        self.sync = sync
        self._sync_task: asyncio.Task[None] | None = None
        self._next_sync = float("-inf")
        self.poll_seconds = poll_seconds or min(MAX_POLL_SECONDS, monitor.settings.probe_interval_seconds / 2)
        self.rng = rng
        self._lock = LeaderLock(
            conninfo, LEADER_LOCK_ID, application_name=APPLICATION_NAME, check_seconds=LEADER_CHECK_SECONDS
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = float("-inf")

    @property
    def is_leader(self) -> bool:
        return self._lock.held

    async def try_lead(self) -> bool:
        """Become (or stay) the leader if no other session holds the lock; False when another one does."""
        was_leader = self._lock.held
        try:
            leads = await self._lock.hold()
        except LeadershipLost as exc:
            if was_leader:
                log.warning("scheduler lost leadership", error=exc.reason)
            leads = False
        if leads and not was_leader:
            log.info("scheduler leads")
        SCHEDULER_LEADER.set(1 if leads else 0)
        return leads

    async def tick(self) -> int:
        """One round of work: probe what is due, prune history when it is time; returns the probes made."""
        probed = await self.monitor.run_due()
        self._start_third_party_round()
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_SECONDS:
            pruned = await self.monitor.prune()
            self._last_prune = time.monotonic()
            if pruned:
                log.info("health history pruned", rows=pruned)
            forgotten = await prune_events(self.monitor.repo, self.monitor.settings.analytics_retention_days)
            if forgotten:
                log.info("discovery events pruned", rows=forgotten)
        await self.monitor.refresh_gauges()
        SCHEDULER_LAST_ROUND.set(time.time())
        self._start_sync_if_due()
        return probed

    def _start_third_party_round(self) -> None:
        """READMEs and package entries are read beside the probes, never in their way: a round of slow
        sources must not delay a probe that is due."""
        if self.third_party is None:
            return
        if self._third_party_round is not None and not self._third_party_round.done():
            return
        if self._third_party_round is not None and not self._third_party_round.cancelled():
            failure = self._third_party_round.exception()
            if failure is not None:
                log.warning("third-party text round failed", error=type(failure).__name__)
        self._third_party_round = asyncio.create_task(
            self.third_party.run_due(), name="mcplookup-third-party"
        )

    def _start_sync_if_due(self) -> None:
        if self.sync is None or not self.sync.settings.upstream_registries:
            return
        if self._sync_task is not None and not self._sync_task.done():
            return
        if time.monotonic() < self._next_sync:
            return
        self._sync_task = asyncio.create_task(self._sync_round(self.sync), name="mcplookup-sync")

    async def _sync_round(self, sync: UpstreamSync) -> None:
        paused = False
        try:
            reports = await sync.run()
            # A pass cut short by the time budget (a first, full read) goes on at the next round.
            paused = any(not r.finished and r.error is None for r in reports)
            for report in reports:
                _log_entries(report)
                log.info(
                    "upstream sync",
                    upstream=report.upstream,
                    pages=report.pages,
                    applied=report.applied,
                    refused=len(report.refused),
                    finished=report.finished,
                    error=report.error,
                )
        except RegistryError as exc:
            log.warning("upstream sync failed", error=exc.message)
        except Exception as exc:  # the job must outlive any one bad run
            log.error("upstream sync failed", error=type(exc).__name__)
        finally:
            self._next_sync = time.monotonic() + (0.0 if paused else sync.settings.sync_interval_seconds)

    async def _stop_sync(self) -> None:
        task, self._sync_task = self._sync_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self.try_lead():
                    await self.tick()
                elif self._sync_task is not None:
                    await self._stop_sync()
            except RegistryError as exc:
                log.warning("scheduler round failed", error=exc.message)
            except Exception as exc:  # the loop must outlive any one bad round
                log.error("scheduler round failed", error=type(exc).__name__)
            # Jitter keeps replicas that started together from contending for the lock in step.
            pause = self.poll_seconds * (0.8 + 0.4 * self.rng())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="mcplookup-scheduler")

    async def stop(self, grace: float = 5.0) -> None:
        """Let the current round finish (up to `grace` seconds), then release leadership."""
        self._stopping.set()
        await self._stop_sync()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._third_party_round is not None:
            self._third_party_round.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._third_party_round
            self._third_party_round = None
        await self._lock.release()
        SCHEDULER_LEADER.set(0)

    async def backend_pid(self) -> int | None:
        """The leader connection's server process id (operators match it in pg_stat_activity)."""
        return self._lock.backend_pid()
