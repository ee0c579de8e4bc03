"""Discovery analytics: one `discovery_events` row per discover, get, register and verify call.

Events are kept in a bounded in-memory buffer and written in batches with COPY by a background loop (and
at shutdown), never on the request's path: a call only appends a record of what it has at hand; the
rest (the client's network, the normalised query) is worked out by the writer. When the buffer is full, new events
are dropped and counted (`discovery_events_dropped_total{reason="buffer_full"}`), so a slow or absent
database costs statistics, never latency or memory. A failed write drops its batch the same way.

Client addresses are stored truncated to their network (IPv4 /24, IPv6 /48), not hashed: an unkeyed hash
of an IPv4 address is reversed by trying all 2^32 of them in minutes, and a keyed one needs a secret to
keep and rotate; a network prefix is what the statistics need (how many networks, not which person) and
is not personal on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from mcplookup_mcp.core import request_context
from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.core.metrics import ANALYTICS_DROPPED, ANALYTICS_WRITTEN
from mcplookup_mcp.store.repository import Repository

log = structlog.get_logger("mcplookup.analytics")
T = TypeVar("T")

EVENT_TYPES = ("discover", "get", "register", "verify")
BUFFER_CAPACITY = 10_000
BATCH = 500
FLUSH_SECONDS = 1.0
MAX_QUERY_CHARS = 200
MAX_USER_AGENT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Event:
    event_type: str
    outcome: str
    transport: str
    result_count: int
    duration_ms: float
    query: str | None
    capabilities: tuple[str, ...]
    domain: str | None
    user_agent: str | None
    client: str | None  # the address: only its network is stored
    created_at: datetime


@functools.lru_cache(maxsize=4096)
def client_network(address: str | None) -> str | None:
    """The client's network, the address itself never: 203.0.113.7 -> 203.0.113.0/24, IPv6 to its /48."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def normalise_query(text: str | None) -> str | None:
    words = " ".join((text or "").lower().split())
    return words[:MAX_QUERY_CHARS] or None


class EventBuffer:
    def __init__(
        self,
        repo: Repository,
        *,
        capacity: int = BUFFER_CAPACITY,
        batch: int = BATCH,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.repo = repo
        self.capacity = capacity
        self.batch = batch
        self.flush_seconds = flush_seconds
        self._events: list[Event] = []
        self._flushing = asyncio.Lock()
        self._batch_ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._events)

    def record(
        self,
        event_type: str,
        *,
        started: float,
        outcome: str = "ok",
        transport: str | None = None,
        result_count: int = 0,
        query: str | None = None,
        capabilities: Sequence[str] = (),
        domain: str | None = None,
    ) -> None:
        """Note one call (cheap: no I/O). `started` is its time.perf_counter() at the start."""
        if len(self._events) >= self.capacity:
            ANALYTICS_DROPPED.labels(reason="buffer_full").inc()
            return
        info = request_context.current()
        user_agent = info.user_agent[:MAX_USER_AGENT_CHARS] if info and info.user_agent else None
        self._events.append(
            Event(
                event_type=event_type,
                outcome=outcome,
                transport=transport or (info.transport if info else "internal"),
                result_count=result_count,
                duration_ms=(time.perf_counter() - started) * 1000,
                query=query,
                capabilities=tuple(capabilities),
                domain=domain,
                user_agent=user_agent,
                client=info.client if info else None,
                created_at=datetime.now(UTC),
            )
        )
        if len(self._events) >= self.batch:
            self._batch_ready.set()

    async def track(
        self,
        event_type: str,
        domain: str | None,
        call: Callable[[], Awaitable[T]],
        outcome: Callable[[T], str] = lambda _: "ok",
    ) -> T:
        """Run a service call and note it, failed or not (a failure's outcome is its error's slug)."""
        started = time.perf_counter()
        try:
            result = await call()
        except RegistryError as exc:
            self.record(event_type, started=started, outcome=exc.slug, domain=domain)
            raise
        self.record(event_type, started=started, outcome=outcome(result), domain=domain, result_count=1)
        return result

    async def flush(self) -> int:
        """Write what is buffered, a batch per statement; returns the events written."""
        written = 0
        async with self._flushing:
            while self._events:
                events, self._events = self._events[: self.batch], self._events[self.batch :]
                try:
                    async with self.repo.read() as q:
                        await q.record_analytics_events(_rows(events))
                except Exception as exc:  # statistics must never fail a call or stop the loop
                    ANALYTICS_DROPPED.labels(reason="write_failed").inc(len(events))
                    log.warning("discovery events not recorded", count=len(events), error=type(exc).__name__)
                    continue
                ANALYTICS_WRITTEN.inc(len(events))
                written += len(events)
        return written

    async def run(self) -> None:
        """The background writer: every `flush_seconds`, or sooner once a batch is waiting."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_ready.wait(), self.flush_seconds)
            self._batch_ready.clear()
            await self.flush()


def _rows(events: list[Event]) -> Iterator[tuple[Any, ...]]:
    """The events in record_analytics_events' column order."""
    for e in events:
        yield (
            e.event_type,
            e.outcome,
            e.transport,
            e.result_count,
            e.duration_ms,
            normalise_query(e.query),
            list(e.capabilities),
            e.domain,
            e.user_agent,
            client_network(e.client),
            e.created_at,
        )


TOP_LIMIT = 10


async def analytics_stats(repo: Repository) -> dict[str, Any]:
    """get_discovery_stats' share from the events: top searches and capabilities of the last 7 days,
    counts per type and period, and the share of DNS-checked verifications that succeeded (30 days)."""
    from mcplookup_mcp.core.models import EventCounts, TopValue

    async with repo.read() as q:
        counts = await q.analytics_counts()
        queries = await q.analytics_top("queries", TOP_LIMIT)
        capabilities = await q.analytics_top("capabilities", TOP_LIMIT)
    by_type = {r["event_type"]: r for r in counts}
    verify = by_type.get("verify")
    checked = verify["checked_30d"] if verify else 0
    return {
        "top_queries_7d": [TopValue(value=r["value"], count=r["count"]) for r in queries],
        "top_capabilities_7d": [TopValue(value=r["value"], count=r["count"]) for r in capabilities],
        "events": {
            kind: EventCounts(
                last_hour=by_type[kind]["last_hour"] if kind in by_type else 0,
                last_24h=by_type[kind]["last_24h"] if kind in by_type else 0,
                last_7d=by_type[kind]["last_7d"] if kind in by_type else 0,
                last_30d=by_type[kind]["last_30d"] if kind in by_type else 0,
            )
            for kind in EVENT_TYPES
        },
        "verification_success_rate_30d": round(verify["succeeded_30d"] / checked, 4)
        if verify and checked
        else None,
    }


PRUNE_BATCH = 10_000


async def prune_events(repo: Repository, retention_days: float) -> int:
    """Forget events older than the retention (the scheduler's leader calls it hourly)."""
    before = datetime.now(UTC) - timedelta(days=retention_days)
    total = 0
    while True:
        async with repo.read() as q:
            deleted = await q.prune_discovery_events(before, PRUNE_BATCH)
        total += deleted
        if deleted < PRUNE_BATCH:
            return total
