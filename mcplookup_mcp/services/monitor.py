"""Health monitoring: probe listed servers, keep each probe as a fact, derive uptime, latency and trust.

Up: a probe whose status is healthy, degraded or auth_required (alive; 401/403 means it wants
credentials, not that it is down). Uptime over a window is the share of probes in that window that were
up; the average latency is the mean `initialize` round trip of the completed handshakes (healthy,
degraded) in the last 24 hours. Nothing is estimated: with no probes in a window the figure is null.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import dns.asyncresolver
import structlog

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import Conflict, NotFound, RateLimited
from mcplookup_mcp.core.metrics import HEALTH_PROBES, HEALTHY_SERVERS_PERCENTAGE
from mcplookup_mcp.core.models import (
    DayUptime,
    HealthCheckOut,
    HealthResult,
    HealthSpan,
    ToolOut,
    TrustBreakdown,
    UntrustedTools,
)
from mcplookup_mcp.core.next_steps import MCP, Steps
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.core.vocab import REMOTE_TRANSPORTS, UP_STATUSES
from mcplookup_mcp.probe.health import ProbeResult, Transport, probe
from mcplookup_mcp.probe.ssrf import ProbePolicy
from mcplookup_mcp.services.ratelimit import Limiter
from mcplookup_mcp.services.read_your_writes import WriteMarks, domain_of_name
from mcplookup_mcp.services.trust import TrustFacts, trust_score
from mcplookup_mcp.store.repository import Queries, Repository, Row

log = structlog.get_logger("mcplookup.health")

HEALTH_FIELDS = ("name", "domain", "realtime")
REALTIME_INTERVAL = timedelta(seconds=30)
HISTORY_LIMIT = 20
PRUNE_BATCH = 10_000
# The figures read whole hours for at most the last 7 days (and the day before, at the 7-day edge); daily
# roll-ups stay for a year's history.
HOURLY_KEPT = timedelta(days=8)
DAILY_KEPT = timedelta(days=400)
JITTER = 0.1

Prober = Callable[[str, Transport], Awaitable[ProbeResult]]


def probe_policy(settings: Settings) -> ProbePolicy:
    """The one place the prober's reach is decided: production gets https on the listed ports, no allowlist."""
    if settings.is_production:
        return ProbePolicy(allowed_ports=frozenset({443}), allow_plain_http=False)
    return ProbePolicy(
        allow_cidrs=settings.probe_allow_cidrs,
        allowed_ports=settings.probe_ports,
        allow_plain_http=settings.allow_http_endpoints,
    )


def untrusted_tools(row: Mapping[str, Any]) -> UntrustedTools:
    items = [
        ToolOut(name=str(t.get("name", "")), description=str(t.get("description", "")))
        for t in row.get("tools") or []
        if isinstance(t, dict)
    ]
    return UntrustedTools(
        fingerprint=row.get("tools_fingerprint"), changed_at=row.get("tools_changed_at"), items=items
    )


def server_health_fields(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """What get_server adds about health: the tools seen (marked untrusted), the trust breakdown, uptimes."""
    if row is None:
        return {}
    breakdown = row.get("trust_breakdown")
    return {
        "tools": untrusted_tools(row),
        "trust": TrustBreakdown.model_validate(breakdown) if breakdown else None,
        "uptime_24h": row.get("uptime_24h"),
        "uptime_7d": row.get("uptime_7d"),
    }


class HealthMonitor:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        resolver: dns.asyncresolver.Resolver,
        limiter: Limiter,
        clock: Callable[[], datetime],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.resolver = resolver
        self.limiter = limiter
        self.clock = clock
        self.rng = rng
        # Set by app.py to the registry service's, so an owner's reads here see its writes too.
        self.marks = WriteMarks(repo)
        self.policy = probe_policy(settings)
        self.interval = timedelta(seconds=settings.probe_interval_seconds)

    async def probe(self, endpoint: str, transport: Transport) -> ProbeResult:
        return await probe(
            endpoint,
            transport=transport,
            resolver=self.resolver,
            policy=self.policy,
            timeout=self.settings.probe_timeout,
            degraded_ms=self.settings.probe_degraded_ms,
            ca_bundle=self.settings.probe_ca_bundle,
        )

    def _next_probe(self, now: datetime) -> datetime:
        # Jitter spreads servers registered together over the interval instead of probing them in bursts.
        return now + self.interval * (1 + JITTER * (2 * self.rng() - 1))

    # recording ---------------------------------------------------------------------------------------

    async def record(
        self, server_id: UUID, result: ProbeResult, *, trigger: str = "schedule", reschedule: bool = True
    ) -> bool:
        """Store one probe result and recompute the server's health and trust; False if the server is gone."""
        now = self.clock()
        async with self.repo.transaction() as q:
            server = await q.lock_server_for_health(server_id)
            if server is None:
                return False
            seen = result.tools_fingerprint
            changed = seen is not None and server["tools_fingerprint"] not in (None, seen)
            await q.insert_health_check(
                {
                    "server_id": server_id,
                    "checked_at": now,
                    "status": result.status,
                    "is_up": result.is_up,
                    "latency_ms": result.latency_ms,
                    "http_status": result.http_status,
                    "protocol_version": result.protocol_version,
                    "server_name": result.server_name,
                    "server_version": result.server_version,
                    "error_class": result.error_class,
                    "error": result.error,
                    "tls_valid": result.tls_valid,
                    "tools_fingerprint": seen,
                    "tools_changed": changed,
                    "trigger": trigger,
                }
            )
            tools_changed_at = now if changed else server["tools_changed_at"]
            if seen is not None and seen != server["tools_fingerprint"]:
                tools = [{"name": t.name, "description": t.description} for t in result.tools]
                await q.update_server_tools(server_id, tools, seen, tools_changed_at)
            stats = await q.health_stats(server_id, now)
            breakdown = self._trust(
                server, result, stats, now, seen or server["tools_fingerprint"], tools_changed_at
            )
            await q.update_server_health(
                {
                    "id": server_id,
                    "now": now,
                    "status": result.status,
                    "uptime_24h": stats["uptime_24h"],
                    "uptime_7d": stats["uptime_7d"],
                    "avg_latency_ms": stats["avg_latency_ms"],
                    "tls_valid": result.tls_valid,
                    "trust_score": breakdown.score,
                    "trust_breakdown": breakdown.model_dump(mode="json"),
                    "next_probe_at": self._next_probe(now) if reschedule else None,
                }
            )
        HEALTH_PROBES.labels(status=result.status, trigger=trigger).inc()
        return True

    def _trust(
        self,
        server: Row,
        result: ProbeResult,
        stats: Row,
        now: datetime,
        fingerprint: str | None,
        tools_changed_at: datetime | None,
    ) -> TrustBreakdown:
        if result.status == "auth_required":
            observed: str | None = "required"
        elif result.status in ("healthy", "degraded") and result.protocol_version is not None:
            observed = "open"
        else:
            observed = None
        listed_since = server["published_at"] or server["created_at"]
        return trust_score(
            TrustFacts(
                verified=bool(server["verified"]),
                uptime_7d=stats["uptime_7d"],
                avg_latency_ms=stats["avg_latency_ms"],
                degraded_ms=self.settings.probe_degraded_ms,
                tls_valid=result.tls_valid,
                listed_for=now - listed_since,
                tools_seen=fingerprint is not None,
                tools_unchanged_for=None if tools_changed_at is None else now - tools_changed_at,
                auth_declared=server["auth_type"],
                auth_observed=observed,
            )
        )

    # scheduled work ----------------------------------------------------------------------------------

    async def run_due(self, *, batch: int | None = None) -> int:
        """Claim the servers due for a probe and probe them, `probe_concurrency` at a time."""
        size = batch or self.settings.probe_concurrency * 4
        gate = asyncio.Semaphore(self.settings.probe_concurrency)

        async def one(row: Row) -> None:
            async with gate:
                await self._probe_and_record(row)

        done = 0
        while True:
            now = self.clock()
            async with self.repo.transaction() as q:
                # The lease keeps a claimed server from being claimed again while its probe runs; if this
                # replica dies mid-probe the server becomes due again when the lease ends.
                claimed = await q.claim_due_servers(now, now + self.interval, size)
            if not claimed:
                return done
            async with asyncio.TaskGroup() as group:
                for row in claimed:
                    group.create_task(one(row))
            done += len(claimed)
            if len(claimed) < size:
                return done

    async def _probe_and_record(self, row: Row) -> None:
        try:
            # The prober bounds itself by probe_timeout; this outer bound also covers the database writes.
            async with asyncio.timeout(self.settings.probe_timeout + 10):
                result = await self.probe(row["endpoint"], row["transport"])
                await self.record(row["id"], result)
        except Exception as exc:  # one server's failure must not stop the others' probes
            log.warning("probe failed", server=row["name"], error=type(exc).__name__)

    async def prune(self) -> int:
        """Delete probes past MCPLOOKUP_HEALTH_RETENTION_DAYS and roll-ups past theirs, PRUNE_BATCH rows
        per transaction, so no lock is held for long; returns the probes deleted."""
        now = self.clock()
        total = await self._prune_batches(
            lambda q: q.prune_health_checks(
                now - timedelta(days=self.settings.health_retention_days), PRUNE_BATCH
            )
        )
        await self._prune_batches(lambda q: q.prune_health_rollups("hourly", now - HOURLY_KEPT, PRUNE_BATCH))
        await self._prune_batches(lambda q: q.prune_health_rollups("daily", now - DAILY_KEPT, PRUNE_BATCH))
        return total

    async def _prune_batches(self, batch: Callable[[Queries], Awaitable[int]]) -> int:
        total = 0
        while True:
            async with self.repo.transaction() as q:
                deleted = await batch(q)
            total += deleted
            if deleted < PRUNE_BATCH:
                return total
            await asyncio.sleep(0)  # let requests waiting on this process run between batches

    async def refresh_gauges(self) -> None:
        async with self.repo.read() as q:
            pct = await q.healthy_servers_percentage()
        # NaN while no listed server has been probed: "no figure yet", which no threshold crosses.
        HEALTHY_SERVERS_PERCENTAGE.set(pct if pct is not None else float("nan"))

    # answers -----------------------------------------------------------------------------------------

    async def get_health(self, data: Mapping[str, Any], *, client: str, steps: Steps = MCP) -> HealthResult:
        result, _ = await self._health(data, client, steps, timeline=False)
        return result

    async def get_health_with_timeline(
        self, data: Mapping[str, Any], *, client: str, steps: Steps = MCP
    ) -> tuple[HealthResult, list[HealthSpan]]:
        """get_health's answer and, read with it from the roll-ups, the server's probes per UTC day of the
        five days before yesterday, then per UTC hour of yesterday and today (the server page's chart)."""
        return await self._health(data, client, steps, timeline=True)

    async def _health(
        self, data: Mapping[str, Any], client: str, steps: Steps, *, timeline: bool
    ) -> tuple[HealthResult, list[HealthSpan]]:
        validation.reject_unknown(data, HEALTH_FIELDS)
        checked_name, checked_domain = validation.name_or_domain(data)
        realtime = validation.flag(data.get("realtime"), "realtime")
        after = await self.marks.floor(checked_domain or domain_of_name(checked_name))
        rows = await self.repo.standby_read(
            lambda q: q.get_health_servers(checked_name, checked_domain), after=after
        )
        if not rows:
            what = f"named {checked_name}" if checked_name else f"under {checked_domain}"
            raise NotFound(
                f"no listed server {what}; {steps.search}",
                field="name" if checked_name else "domain",
            )
        row, others = rows[0], [r["name"] for r in rows[1:]]
        if realtime:
            await self._probe_now(row, client)

        now = self.clock()
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        first_day = today - timedelta(days=6)

        async def figures(q: Queries) -> tuple[list[Row], list[Row], list[Row], list[Row]]:
            fresh = await q.get_health_servers(row["name"], None)
            if not fresh:
                return fresh, [], [], []
            history = await q.recent_health_checks(fresh[0]["id"], HISTORY_LIMIT)
            days = await q.daily_uptime(fresh[0]["id"], first_day)
            spans = (
                await q.health_timeline(fresh[0]["id"], first_day, today - timedelta(days=1))
                if timeline
                else []
            )
            return fresh, history, days, spans

        async def uptime(q: Queries) -> Row:
            return await q.health_stats(row["id"], now)

        # health_stats on the plan the connection keeps: its best plan is the same for any server and
        # time, and planning it was most of its cost (docs/health.md).
        if realtime:  # the probe just written is on the primary
            async with self.repo.read() as q:
                fresh, history, days, spans = await figures(q)
            async with self.repo.read(kept_plans=True) as q:
                stats = await uptime(q)
        else:
            fresh, history, days, spans = await self.repo.standby_read(figures, after=after)
            stats = await self.repo.standby_read(uptime, after=after, kept_plans=True)
        if not fresh:
            raise NotFound(f"{row['name']} is no longer listed", field="name" if checked_name else "domain")
        row = fresh[0]
        result = HealthResult(
            name=row["name"],
            domain=row["domain"],
            endpoint=row["endpoint"],
            transport=row["transport"],
            status=row["health_status"],
            up_statuses=sorted(UP_STATUSES),
            latency_ms=history[0]["latency_ms"] if history else None,
            avg_response_time_ms=stats["avg_latency_ms"],
            uptime_24h=stats["uptime_24h"],
            uptime_7d=stats["uptime_7d"],
            checks_24h=stats["checks_24h"],
            checks_7d=stats["checks_7d"],
            last_check=row["last_health_check_at"],
            next_check=row["next_probe_at"],
            tls_valid=row["tls_valid"],
            trust_score=row["trust_score"],
            probed_now=realtime,
            history=[
                HealthCheckOut(up=h["is_up"], **{k: v for k, v in h.items() if k != "is_up"}) for h in history
            ],
            other_servers_on_domain=others,
            uptime_by_day=[DayUptime(**day) for day in days],
        )
        return result, [HealthSpan(**span) for span in spans]

    async def _probe_now(self, row: Row, client: str) -> None:
        # The probed rule (mcp_server_probed) for a server get_health_servers found active.
        if not row["endpoint"] or row["transport"] not in REMOTE_TRANSPORTS:
            raise Conflict(f"{row['name']} has no remote endpoint to probe (transport {row['transport']})")
        await self.limiter.hit("health_realtime", client)
        now = self.clock()
        async with self.repo.transaction() as q:
            taken = await q.take_realtime_slot(row["id"], now, now - REALTIME_INTERVAL)
        if not taken:
            last = row["realtime_probe_at"] or now
            retry = max(1, int((last + REALTIME_INTERVAL - now).total_seconds()) + 1)
            raise RateLimited(
                f"{row['name']} was probed on request less than {REALTIME_INTERVAL.seconds} s ago; "
                f"ask again without realtime for the stored figures, or retry in {retry} s",
                retry_after=retry,
            )
        result = await self.probe(row["endpoint"], row["transport"])
        await self.record(row["id"], result, trigger="realtime", reschedule=False)
