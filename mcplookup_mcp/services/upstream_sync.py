"""Following upstream registries: read `/v0.1/servers?updated_since=…` page by page and apply each entry.

A pass starts at the upstream's watermark and follows `nextCursor` to the last page. After each page
the entries are applied through the importer's `admit` and `apply_version` and the cursor past them is stored, in
one transaction, so a run that stops (a crash, the time budget, an error) resumes at the page after the
last one applied, and applying an entry twice would change nothing anyway. Only a pass that reaches the last page moves the watermark, to the newest `updatedAt` it saw
but never past the moment the pass began by the upstream's own clock (its `Date` header): an entry
changed while the pass was under way, behind the cursor, is then read by the next pass instead of lost.
The rules, and why a name held here is never overwritten: docs/sync.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dns.asyncresolver
import structlog

from mcplookup_mcp.core.metrics import SYNC_ENTRIES, SYNC_FAILURES, SYNC_LAG, SYNC_RUNS
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.ssrf import ProbePolicy
from mcplookup_mcp.probe.upstream import UpstreamClient, UpstreamError, UpstreamPage
from mcplookup_mcp.services.importer import admit, apply_version
from mcplookup_mcp.store.repository import Queries, Repository

log = structlog.get_logger("mcplookup.sync")

OFFICIAL = "io.modelcontextprotocol.registry/official"
STATUSES = ("active", "deprecated", "deleted")
ATTEMPTS = 4
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
# Used only when the upstream sends no readable Date header: our clock, less a margin for skew.
CLOCK_MARGIN = timedelta(minutes=5)


_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def sync_policy(settings: Settings) -> ProbePolicy:
    """Where sync may connect: in production https on 443 to public addresses only (the prober's
    guard); elsewhere also plain http, any port and loopback, for registries started by tests."""
    if settings.is_production:
        return ProbePolicy(allowed_ports=frozenset({443}), allow_plain_http=False, max_redirects=0)
    return ProbePolicy(
        allow_cidrs=(*settings.probe_allow_cidrs, *_LOOPBACK),
        allowed_ports=frozenset(range(1, 65536)),
        allow_plain_http=True,
        max_redirects=0,
    )


def build_sync(
    repo: Repository, settings: Settings, resolver: dns.asyncresolver.Resolver, clock: Callable[[], datetime]
) -> UpstreamSync:
    client = UpstreamClient(
        resolver,
        sync_policy(settings),
        timeout=settings.sync_timeout,
        max_bytes=settings.sync_max_page_bytes,
        ca_bundle=settings.probe_ca_bundle,
    )
    return UpstreamSync(repo, client, settings, clock)


@dataclass
class UpstreamReport:
    upstream: str
    pages: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[str | None, str]] = field(default_factory=list)
    fixed: list[tuple[str, list[str]]] = field(default_factory=list)
    finished: bool = False
    error: str | None = None
    busy: bool = False
    watermark: datetime | None = None
    # Whether the last request sent a cursor (a resumed pass, or a page after the first).
    cursor_sent: bool = False

    @property
    def applied(self) -> int:
        return self.created + self.updated


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _official(item: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = item.get("_meta")
    found = meta.get(OFFICIAL) if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


class UpstreamSync:
    def __init__(
        self,
        repo: Repository,
        client: UpstreamClient,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.repo = repo
        self.client = client
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.rng = rng

    async def run(self) -> list[UpstreamReport]:
        """One run over every configured upstream, each within its time budget."""
        return [await self.run_one(upstream) for upstream in self.settings.upstream_registries]

    async def run_one(self, upstream: str) -> UpstreamReport:
        report = UpstreamReport(upstream)
        budget = self.settings.sync_max_seconds
        now = self.clock()
        async with self.repo.transaction() as q:
            # The lease outlasts the budget by the longest single request, so it never ends mid-run.
            lease = now + timedelta(seconds=budget + self.settings.sync_timeout * ATTEMPTS + 60)
            state = await q.claim_sync(upstream, now, lease)
        if state is None:
            report.busy = True
            report.error = "another run is reading this upstream"
            return report
        try:
            await self._pass(upstream, state, report, time.monotonic() + budget)
        except UpstreamError as exc:
            report.error = f"{exc.kind}: {exc.message}"
            SYNC_FAILURES.labels(upstream=upstream, reason=exc.kind).inc()
            async with self.repo.transaction() as q:
                await q.record_sync_failure(upstream, report.error[:500], self.clock())
                if exc.kind == "refused" and report.cursor_sent:
                    # A 4xx to a cursor it gave (expired, or a new cursor format after an upgrade) would
                    # stop every run at the same page: the pass starts again at the watermark instead.
                    await q.reset_sync_pass(upstream, self.clock())
            log.warning("upstream sync stopped", upstream=upstream, reason=exc.kind, error=exc.message[:200])
        finally:
            async with self.repo.transaction() as q:
                await q.release_sync(upstream)
        SYNC_RUNS.labels(upstream=upstream, result="finished" if report.finished else "stopped").inc()
        return report

    async def _pass(
        self, upstream: str, state: Mapping[str, Any], report: UpstreamReport, deadline: float
    ) -> None:
        watermark: datetime | None = state["watermark"]
        cursor: str | None = state["cursor"]
        if cursor:
            since, started, newest = state["pass_since"], state["pass_started_at"], state["pass_newest"]
        else:
            since, started, newest = watermark, None, None
        report.watermark = watermark
        while True:
            # At least one page a run, so that a budget shorter than one page still moves forward.
            if report.pages and time.monotonic() >= deadline:
                log.info("upstream sync paused: time budget spent", upstream=upstream, pages=report.pages)
                return
            report.cursor_sent = cursor is not None
            page = await self._fetch(upstream, since, cursor, deadline)
            if started is None:
                started = page.served_at or (self.clock() - CLOCK_MARGIN)
            finished = page.next_cursor is None
            # The page's entries and the cursor past them commit together: a page is applied once, or
            # not at all and read again.
            async with self.repo.transaction() as q:
                tally = await self._apply(q, page, upstream)
                if tally.newest is not None and (newest is None or tally.newest > newest):
                    newest = tally.newest
                new_watermark = watermark
                if finished and newest is not None:
                    candidate = min(newest, started)
                    if watermark is None or candidate > watermark:
                        new_watermark = candidate
                applied = tally.created + tally.updated
                await q.save_sync_progress(
                    {
                        "upstream": upstream,
                        "cursor": page.next_cursor,
                        "pass_since": since,
                        "pass_started_at": started,
                        "pass_newest": newest,
                        "finished": finished,
                        "watermark": new_watermark,
                        "applied": applied,
                        "now": self.clock(),
                    }
                )
            report.pages += 1
            tally.add_to(report)
            if finished:
                report.finished = True
                report.watermark = new_watermark
                return
            cursor = page.next_cursor

    async def _fetch(
        self, upstream: str, since: datetime | None, cursor: str | None, deadline: float
    ) -> UpstreamPage:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self.client.fetch_page(
                    upstream, updated_since=since, cursor=cursor, limit=self.settings.sync_page_size
                )
            except UpstreamError as exc:
                if not exc.retryable or attempt == ATTEMPTS:
                    raise
                backoff = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1)) * (0.5 + self.rng())
                wait = exc.retry_after if exc.retry_after is not None else backoff
                if time.monotonic() + wait >= deadline:
                    raise UpstreamError(
                        exc.kind,
                        f"{exc.message}; retrying in {wait:.0f} s would pass the run's time budget",
                        retry_after=exc.retry_after,
                    ) from None
                SYNC_FAILURES.labels(upstream=upstream, reason=exc.kind).inc()
                log.info(
                    "upstream page retried", upstream=upstream, reason=exc.kind, wait_seconds=round(wait, 1)
                )
                await self.sleep(wait)
        raise AssertionError("unreachable")

    async def _apply(self, q: Queries, page: UpstreamPage, upstream: str) -> _Tally:
        """Apply one page's entries in the caller's transaction; what happened to each, and the newest updatedAt."""
        tally = _Tally()
        now = self.clock()
        for item in page.entries:
            server = item.get("server") if isinstance(item, dict) else None
            official = _official(item) if isinstance(item, dict) else {}
            name = server.get("name") if isinstance(server, dict) else None
            shown = name if isinstance(name, str) else None
            updated_at = _time(official.get("updatedAt"))
            if updated_at is not None and (tally.newest is None or updated_at > tally.newest):
                tally.newest = updated_at
            reason, fixes = admit(server) if server is not None else ("no server object", [])
            status = official.get("status", "active")
            if reason is None and status not in STATUSES:
                reason = f"unknown upstream status {str(status)[:40]!r}"
            if reason is None:
                assert isinstance(server, dict)
                latest = official.get("isLatest")
                outcome = await apply_version(
                    q,
                    server,
                    now,
                    status=str(status),
                    latest=latest if isinstance(latest, bool) else None,
                    published_at=_time(official.get("publishedAt")),
                )
                if isinstance(outcome, str):
                    reason = outcome
                elif outcome is None:
                    tally.unchanged += 1
                elif outcome:
                    tally.created += 1
                else:
                    tally.updated += 1
                if reason is None and fixes:
                    tally.fixed.append((str(name), fixes))
            if reason is not None:
                tally.refused.append((shown, reason))
        return tally


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[str | None, str]] = field(default_factory=list)
    fixed: list[tuple[str, list[str]]] = field(default_factory=list)
    newest: datetime | None = None

    def add_to(self, report: UpstreamReport) -> None:
        report.created += self.created
        report.updated += self.updated
        report.unchanged += self.unchanged
        report.refused += self.refused
        report.fixed += self.fixed
        SYNC_ENTRIES.labels(upstream=report.upstream, outcome="applied").inc(self.created + self.updated)
        SYNC_ENTRIES.labels(upstream=report.upstream, outcome="unchanged").inc(self.unchanged)
        SYNC_ENTRIES.labels(upstream=report.upstream, outcome="refused").inc(len(self.refused))


async def refresh_sync_gauges(repo: Repository, upstreams: tuple[str, ...], now: datetime) -> None:
    """How far behind each configured upstream our copy is: seconds since the last finished pass began
    (by the upstream's clock), or since the epoch when no pass has finished (so the alert fires)."""
    async with repo.read() as q:
        states = {row["upstream"]: row for row in await q.list_sync_states()}
    for upstream in upstreams:
        row = states.get(upstream)
        as_of = row["current_as_of"] if row else None
        SYNC_LAG.labels(upstream=upstream).set(
            (now - as_of).total_seconds() if as_of is not None else now.timestamp()
        )
