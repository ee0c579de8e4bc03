"""The only module that names SQL queries. Driver errors become the project's own errors here."""

from __future__ import annotations

import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import psycopg
import psycopg.errors
import pydantic_core
from psycopg import AsyncRawCursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mcplookup_mcp.core.errors import AlreadyRegistered, Busy, Unavailable
from mcplookup_mcp.core.metrics import DB_READS
from mcplookup_mcp.store.sqlfiles import positional_queries

if TYPE_CHECKING:
    from mcplookup_mcp.store.generation_feed import GenerationFeed
    from mcplookup_mcp.store.standby import Standbys

Row = dict[str, Any]
T = TypeVar("T")


class Queries:
    """Named queries bound to one connection (inside a transaction when opened by `transaction`)."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn
        self._sql = positional_queries()

    async def _execute(self, name: str, params: Mapping[str, Any] | None) -> AsyncRawCursor[Row]:
        query, names = self._sql[name]
        given = params or {}
        try:
            values = [given[n] for n in names]
        except KeyError as exc:
            raise ValueError(f"query {name} needs the parameter {exc.args[0]}") from None
        cur = AsyncRawCursor(self.conn)
        await cur.execute(query, values)
        return cur

    async def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        cur = await self._execute(name, params)
        return await cur.fetchall() if cur.description else []

    async def _one(self, name: str, params: Mapping[str, Any] | None = None) -> Row | None:
        cur = await self._execute(name, params)
        return await cur.fetchone() if cur.description else None

    async def _run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        cur = await self._execute(name, params)
        return cur.rowcount

    # domains
    async def ensure_domain(self, domain: str) -> None:
        await self._run("ensure_domain", {"domain": domain})

    async def get_domain(self, domain: str) -> Row | None:
        return await self._one("get_domain", {"domain": domain})

    async def lock_domain(self, domain: str) -> Row | None:
        return await self._one("lock_domain", {"domain": domain})

    async def mark_domain_verified(self, domain: str, now: datetime, reason: str) -> None:
        await self._run("mark_domain_verified", {"domain": domain, "now": now, "reason": reason})

    async def mark_domain_servers_verified(self, domain: str, now: datetime) -> None:
        await self._run("mark_domain_servers_verified", {"domain": domain, "now": now})

    # claims
    async def count_pending_claims(self, domain: str, now: datetime) -> int:
        row = await self._one("count_pending_claims", {"domain": domain, "now": now})
        return int(row["n"]) if row else 0

    async def insert_claim(self, params: Mapping[str, Any]) -> UUID:
        row = await self._one("insert_claim", {**params, "listing": Jsonb(params["listing"])})
        assert row is not None
        return UUID(str(row["id"]))

    async def get_claim_for_update(self, domain: str, registration_hash: bytes) -> Row | None:
        return await self._one(
            "get_claim_for_update", {"domain": domain, "registration_hash": registration_hash}
        )

    async def record_claim_failure(self, claim_id: UUID, now: datetime, failure: str) -> None:
        await self._run("record_claim_failure", {"id": claim_id, "now": now, "failure": failure})

    async def mark_claim_verified(self, claim_id: UUID, now: datetime) -> None:
        await self._run("mark_claim_verified", {"id": claim_id, "now": now})

    async def mark_claim_expired(self, claim_id: UUID) -> None:
        await self._run("mark_claim_expired", {"id": claim_id})

    async def void_competing_claims(self, domain: str, claim_id: UUID) -> None:
        await self._run("void_competing_claims", {"domain": domain, "id": claim_id})
        await self._run("delete_voided_pending_servers", {"domain": domain})

    async def expire_claims(self, now: datetime, forget_before: datetime) -> int:
        row = await self._one("expire_claims", {"now": now})
        await self._run("delete_unlisted_pending_servers")
        await self._run("purge_old_claims", {"cutoff": forget_before})
        return int(row["n"]) if row else 0

    # servers
    async def insert_pending_server(self, params: Mapping[str, Any]) -> None:
        await self._run("insert_pending_server", _server_params(params))

    async def insert_active_server(self, params: Mapping[str, Any]) -> None:
        await self._run("insert_active_server", _server_params(params))

    async def publish_claim_server(self, claim_id: UUID, now: datetime) -> str | None:
        row = await self._one("publish_claim_server", {"claim_id": claim_id, "now": now})
        await self._run("delete_claim_pending_server", {"claim_id": claim_id})
        return str(row["name"]) if row else None

    async def get_server_by_name(self, name: str) -> Row | None:
        return await self._one("get_server_by_name", {"name": name})

    async def get_servers_by_domain(self, domain: str) -> list[Row]:
        return await self._all("get_servers_by_domain", {"domain": domain})

    # discovery
    async def discover(self, query_name: str, params: Mapping[str, Any]) -> list[Row]:
        """One of discovery.sql's shapes: discover_ranked or browse_by_<sort>."""
        if query_name != "discover_ranked" and not query_name.startswith("browse_by_"):
            raise ValueError(f"{query_name} is not a discovery query")
        return await self._all(query_name, params)

    async def count_listing(self, params: Mapping[str, Any]) -> int:
        """How many servers a browse_by_<sort> listing returns across its pages, up to params["count_cap"]."""
        row = await self._one("count_listing", params)
        assert row is not None
        return int(row["total"])

    async def set_plan_mode(self, kept: bool) -> None:
        await self._run("kept_plans" if kept else "custom_plans")

    async def cursor_key(self, candidate: bytes) -> bytes | None:
        """The stored cursor key, storing `candidate` if there is none. None when another replica's key
        was committed while this statement ran (it is visible to the next one)."""
        row = await self._one("cursor_key", {"candidate": candidate})
        return bytes(row["value"]) if row is not None else None

    async def discovery_generation(self) -> int:
        """Moves whenever a change to a listing can change a discovery answer."""
        return (await self.discovery_generation_at())[0]

    async def discovery_generation_at(self) -> tuple[int, int]:
        """The discovery generation and the primary's WAL position read with it: a standby that has
        replayed that far holds every listing the generation counts (read it on the primary only)."""
        row = await self._one("discovery_generation")
        assert row is not None
        return int(row["generation"]), lsn_value(row["lsn"])

    async def listen_discovery_generation(self) -> None:
        """Be notified on this connection whenever the generation moves (generation_feed.py)."""
        await self._run("listen_discovery_generation")

    async def capability_counts(self, limit: int) -> list[Row]:
        return await self._all("capability_counts", {"limit": limit})

    async def discovery_stats(self) -> Row:
        row = await self._one("discovery_stats")
        assert row is not None
        return row

    # discovery analytics (analytics.py)
    async def record_analytics_events(self, rows: Iterable[Sequence[Any]]) -> None:
        """Several events at once, one row each in record_analytics_events' column order, with COPY: no
        statement text or parameter arrays to build per batch (analytics.EventBuffer's batch)."""
        copy_sql, _ = self._sql["record_analytics_events"]
        async with self.conn.transaction():
            await self._run("relaxed_commit")
            async with AsyncRawCursor(self.conn).copy(copy_sql) as copy:
                for row in rows:
                    await copy.write_row(row)

    async def analytics_counts(self) -> list[Row]:
        return await self._all("analytics_counts")

    async def analytics_top(self, what: str, limit: int) -> list[Row]:
        return await self._all(f"analytics_top_{what}", {"limit": limit})

    async def prune_discovery_events(self, before: datetime, batch: int) -> int:
        return await self._run("prune_discovery_events", {"before": before, "batch": batch})

    # api keys
    async def insert_api_key(
        self, domain: str, key_hash: bytes, key_prefix: str, now: datetime, expires_at: datetime | None
    ) -> None:
        await self._run(
            "insert_api_key",
            {
                "domain": domain,
                "key_hash": key_hash,
                "key_prefix": key_prefix,
                "now": now,
                "expires_at": expires_at,
            },
        )

    async def revoke_domain_keys(self, domain: str, now: datetime, reason: str) -> int:
        return await self._run("revoke_domain_keys", {"domain": domain, "now": now, "reason": reason})

    async def find_api_key(self, key_hash: bytes) -> Row | None:
        return await self._one("find_api_key", {"key_hash": key_hash})

    async def touch_api_key(self, key_id: UUID, now: datetime) -> None:
        await self._run("touch_api_key", {"id": key_id, "now": now})

    # health
    async def claim_due_servers(self, now: datetime, lease_until: datetime, limit: int) -> list[Row]:
        return await self._all("claim_due_servers", {"now": now, "lease_until": lease_until, "limit": limit})

    async def lock_server_for_health(self, server_id: UUID) -> Row | None:
        return await self._one("lock_server_for_health", {"id": server_id})

    async def insert_health_check(self, params: Mapping[str, Any]) -> None:
        await self._run("insert_health_check", params)

    async def health_stats(self, server_id: UUID, now: datetime) -> Row:
        row = await self._one("health_stats", {"id": server_id, "now": now, **_health_windows(now)})
        assert row is not None
        return row

    async def daily_uptime(self, server_id: UUID, since: datetime) -> list[Row]:
        return await self._all("daily_uptime", {"id": server_id, "since": since})

    async def health_timeline(self, server_id: UUID, since: datetime, hourly_from: datetime) -> list[Row]:
        return await self._all(
            "health_timeline", {"id": server_id, "since": since, "hourly_from": hourly_from}
        )

    async def rollup_health_range(self, start: datetime, end: datetime) -> None:
        await self._run("rollup_health_range", {"from": start, "to": end})

    async def update_server_tools(
        self, server_id: UUID, tools: list[dict[str, str]], fingerprint: str, changed_at: datetime | None
    ) -> None:
        await self._run(
            "update_server_tools",
            {"id": server_id, "tools": Jsonb(tools), "fingerprint": fingerprint, "changed_at": changed_at},
        )

    async def update_server_health(self, params: Mapping[str, Any]) -> None:
        await self._run(
            "update_server_health", {**params, "trust_breakdown": Jsonb(params["trust_breakdown"])}
        )

    async def take_realtime_slot(self, server_id: UUID, now: datetime, not_before: datetime) -> bool:
        row = await self._one("take_realtime_slot", {"id": server_id, "now": now, "not_before": not_before})
        return row is not None

    # third-party text (READMEs, package registries)
    async def schedule_third_party(self, now: datetime) -> int:
        return await self._run("schedule_third_party", {"now": now})

    async def claim_due_third_party(self, now: datetime, lease_until: datetime, limit: int) -> list[Row]:
        return await self._all(
            "claim_due_third_party", {"now": now, "lease_until": lease_until, "limit": limit}
        )

    async def finish_third_party(
        self, server_id: UUID, now: datetime, next_at: datetime, last_error: str | None
    ) -> None:
        await self._run(
            "finish_third_party",
            {"server_id": server_id, "now": now, "next_at": next_at, "last_error": last_error},
        )

    async def get_listed_for_third_party(self, name: str) -> Row | None:
        return await self._one("get_listed_for_third_party", {"name": name})

    async def third_party_of(self, server_id: UUID) -> list[Row]:
        return await self._all("third_party_of", {"server_id": server_id})

    async def upsert_third_party(self, params: Mapping[str, Any]) -> bool:
        row = await self._one("upsert_third_party", params)
        return bool(row and row["changed"])

    async def confirm_third_party(self, server_id: UUID, source: str, identifier: str, now: datetime) -> None:
        await self._run(
            "confirm_third_party",
            {"server_id": server_id, "source": source, "identifier": identifier, "now": now},
        )

    async def forget_third_party(self, server_id: UUID, kept: list[str]) -> int:
        return await self._run("forget_third_party", {"server_id": server_id, "kept": kept})

    async def reindex_server(self, server_id: UUID) -> None:
        await self._run("reindex_server", {"server_id": server_id})

    async def get_health_servers(self, name: str | None, domain: str | None) -> list[Row]:
        return await self._all("get_health_servers", {"name": name, "domain": domain})

    async def recent_health_checks(self, server_id: UUID, limit: int) -> list[Row]:
        return await self._all("recent_health_checks", {"id": server_id, "limit": limit})

    async def prune_health_checks(self, cutoff: datetime, batch: int) -> int:
        return await self._run("prune_health_checks", {"cutoff": cutoff, "batch": batch})

    async def prune_health_rollups(self, grain: str, cutoff: datetime, batch: int) -> int:
        """One batch of `grain` ("hourly" or "daily") roll-ups older than `cutoff`."""
        if grain not in ("hourly", "daily"):
            raise ValueError(f"{grain} is not a roll-up grain")
        return await self._run(f"prune_health_{grain}", {"cutoff": cutoff, "batch": batch})

    async def healthy_servers_percentage(self) -> float | None:
        row = await self._one("healthy_servers_percentage")
        return None if row is None or row["pct"] is None else float(row["pct"])

    # embeddings (semantic search)
    async def embedding_storage(self) -> bool:
        """True when the vectors are kept in pgvector too (migration 0013 adds it where it can)."""
        row = await self._one("embedding_storage")
        return bool(row and row["has_vector"])

    async def claim_unembedded(self, model: str, limit: int) -> list[Row]:
        """In a transaction: servers without a current vector of `model`, locked until it ends."""
        return await self._all("claim_unembedded", {"model": model, "limit": limit})

    async def store_embeddings(
        self, model: str, ids: list[UUID], vectors: list[str], *, in_vector_column: bool
    ) -> int:
        """Store real[] literals ('{0.1,...}') of `model`; returns the rows written."""
        row = await self._one(
            "store_embeddings_vector" if in_vector_column else "store_embeddings",
            {"model": model, "ids": ids, "vectors": vectors},
        )
        return int(row["stored"]) if row else 0

    async def nearest_embeddings(self, model: str, vector: list[float], limit: int) -> list[Row]:
        return await self._all("nearest_embeddings", {"model": model, "vector": vector, "limit": limit})

    async def nearest_embeddings_within(
        self, model: str, vector: list[float], limit: int, filters: Mapping[str, Any]
    ) -> list[Row]:
        """The nearest among the servers a filtered search keeps (discovery.sql's _listed_filters)."""
        async with self.conn.transaction():
            await self._one("iterative_vector_scan")
            return await self._all(
                "nearest_within_filters", {**filters, "model": model, "vector": vector, "limit": limit}
            )

    async def listed_within_filters(self, filters: Mapping[str, Any], limit: int) -> list[UUID]:
        """The ids of the servers a filtered search keeps, up to `limit`."""
        return [row["id"] for row in await self._all("listed_within_filters", {**filters, "limit": limit})]

    async def model_embeddings(self, model: str, limit: int) -> list[Row]:
        return await self._all("model_embeddings", {"model": model, "limit": limit})

    async def embedding_progress(self, model: str) -> Row:
        row = await self._one("embedding_progress", {"model": model})
        assert row is not None
        return row

    # ownership: owner changes, key revocation, re-verification
    async def lock_listed_server(self, name: str) -> Row | None:
        return await self._one("lock_listed_server", {"name": name})

    async def update_server_listing(self, server_id: UUID, params: Mapping[str, Any]) -> int:
        return await self._run("update_server_listing", _server_params({**params, "id": server_id}))

    async def mark_server_deleted(self, server_id: UUID, now: datetime) -> int:
        return await self._run("mark_server_deleted", {"id": server_id, "now": now})

    async def relist_deleted_server(self, params: Mapping[str, Any]) -> int:
        return await self._run("relist_deleted_server", _server_params(params))

    async def fill_discovered_fields(
        self, domain: str, values: Mapping[str, str], sources: Mapping[str, str], now: datetime
    ) -> int:
        fields = ("title", "description", "version", "website_url", "repository_url")
        params: dict[str, Any] = {"domain": domain, "now": now}
        for key in fields:
            params[key] = values.get(key)
            params[f"{key}_source"] = sources.get(key) if key in values else None
        return await self._run("fill_discovered_fields", params)

    async def revoke_api_key(self, key_id: UUID, now: datetime, reason: str) -> int:
        return await self._run("revoke_api_key", {"id": key_id, "now": now, "reason": reason})

    async def claim_due_domains(
        self, now: datetime, interval: timedelta, lease_until: datetime, limit: int
    ) -> list[Row]:
        return await self._all(
            "claim_due_domains",
            {"now": now, "interval": interval, "lease_until": lease_until, "limit": limit},
        )

    async def lock_domain_state(self, domain: str) -> Row | None:
        return await self._one("lock_domain_state", {"domain": domain})

    async def current_verified_claim(self, domain: str) -> Row | None:
        return await self._one("current_verified_claim", {"domain": domain})

    async def set_domain_check(self, params: Mapping[str, Any]) -> None:
        await self._run("set_domain_check", params)

    async def set_domain_servers_verified(self, domain: str, verified: bool, now: datetime) -> int:
        return await self._run(
            "set_domain_servers_verified", {"domain": domain, "verified": verified, "now": now}
        )

    async def count_listed_servers(self) -> int:
        row = await self._one("count_listed_servers")
        return int(row["n"]) if row else 0

    # import
    async def upsert_server_version(self, params: Mapping[str, Any]) -> bool | None:
        values = {
            "status": "active",
            "published_at": None,
            **params,
            "server_json": Jsonb(params["server_json"]),
        }
        row = await self._one("upsert_server_version", values)
        return bool(row["created"]) if row else None

    async def verified_namespace_domain(self, domains: list[str]) -> str | None:
        row = await self._one("verified_namespace_domain", {"domains": domains})
        return str(row["domain"]) if row else None

    async def list_server_versions(self, name: str) -> list[Row]:
        return await self._all("list_server_version_names", {"name": name})

    async def set_latest_version(self, name: str, version: str, now: datetime) -> int:
        return await self._run("set_latest_version", {"name": name, "version": version, "now": now})

    async def get_listed_owner(self, name: str) -> str | None:
        row = await self._one("get_listed_owner", {"name": name})
        return str(row["source"]) if row else None

    async def upsert_imported_server(self, params: Mapping[str, Any]) -> bool | None:
        row = await self._one("upsert_imported_server", _server_params({"status": "active", **params}))
        return bool(row["created"]) if row else None

    # upstream sync
    async def claim_sync(self, upstream: str, now: datetime, until: datetime) -> Row | None:
        await self._run("ensure_sync_state", {"upstream": upstream})
        return await self._one("claim_sync", {"upstream": upstream, "now": now, "until": until})

    async def release_sync(self, upstream: str) -> None:
        await self._run("release_sync", {"upstream": upstream})

    async def get_sync_state(self, upstream: str) -> Row | None:
        return await self._one("get_sync_state", {"upstream": upstream})

    async def save_sync_progress(self, params: Mapping[str, Any]) -> None:
        await self._run("save_sync_progress", params)

    async def record_sync_failure(self, upstream: str, error: str, now: datetime) -> None:
        await self._run("record_sync_failure", {"upstream": upstream, "error": error, "now": now})

    async def reset_sync_pass(self, upstream: str, now: datetime) -> None:
        await self._run("reset_sync_pass", {"upstream": upstream, "now": now})

    async def list_sync_states(self) -> list[Row]:
        return await self._all("list_sync_states")

    # /v0.1
    async def registry_list(self, params: Mapping[str, Any]) -> list[Row]:
        return await self._all("registry_list", params)

    async def registry_versions(self, name: str, include_deleted: bool) -> list[Row]:
        return await self._all("registry_versions", {"name": name, "include_deleted": include_deleted})

    async def registry_version(self, name: str, version: str, include_deleted: bool) -> Row | None:
        return await self._one(
            "registry_version", {"name": name, "version": version, "include_deleted": include_deleted}
        )

    async def ping(self) -> bool:
        row = await self._one("ping")
        return bool(row and row["ok"] == 1)

    # streaming replication (standby.py)
    async def wal_position(self) -> int:
        row = await self._one("wal_position")
        assert row is not None
        return lsn_value(row["lsn"])

    async def standby_state(self) -> Row:
        row = await self._one("standby_state")
        assert row is not None
        return row

    async def standby_replayed(self) -> int:
        row = await self._one("standby_replayed")
        return lsn_value(row["replayed"]) if row and row["replayed"] else 0

    # schema bookkeeping and session locks (migrate.py, scheduler.py)
    async def create_migrations_table(self) -> None:
        await self._run("create_migrations_table")

    async def applied_migrations(self) -> set[str]:
        return {row["version"] for row in await self._all("applied_migrations")}

    async def record_migration(self, version: str) -> None:
        await self._run("record_migration", {"version": version})

    async def advisory_lock(self, lock_id: int) -> None:
        await self._run("advisory_lock", {"lock_id": lock_id})

    async def try_advisory_lock(self, lock_id: int) -> bool:
        row = await self._one("try_advisory_lock", {"lock_id": lock_id})
        return bool(row and row["locked"])

    async def advisory_unlock(self, lock_id: int) -> None:
        await self._run("advisory_unlock", {"lock_id": lock_id})


def _health_windows(now: datetime) -> dict[str, datetime]:
    """The boundaries health_stats reads its windows (now - 24 h, now] and (now - 7 d, now] by: the raw
    probes of the partial hours at each window's start (since_* up to h24 / h7) and of the current hour
    (from h_now), whole hours and days from the roll-ups in between (days from d7 to d_now). UTC."""
    utc = now.astimezone(UTC)
    since_24h, since_7d = utc - timedelta(hours=24), utc - timedelta(days=7)
    h_now = utc.replace(minute=0, second=0, microsecond=0)
    h7 = since_7d.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    d7 = h7.replace(hour=0) + (timedelta(days=1) if h7.hour else timedelta())
    return {
        "since_24h": since_24h,
        "since_7d": since_7d,
        "h24": since_24h.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
        "h7": h7,
        "d7": d7,
        "h_now": h_now,
        "d_now": h_now.replace(hour=0),
    }


def lsn_value(text: str | None) -> int:
    """A WAL position ("16/B374D848") as a number, so positions compare; 0 for none."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _server_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for key in ("repository", "remotes", "packages", "discovered"):
        if key in out and out[key] is not None:
            out[key] = Jsonb(out[key])
    return out


# How long a caller waits for a connection while the database is known to be down (see connection).
DOWN_WAIT_SECONDS = 0.2
# Closed connections a caller may meet before it takes what the pool gives (see _live_connection).
STALE_RETRIES = 3


async def _closed_by_server(conn: psycopg.AsyncConnection[Row]) -> bool:
    """Whether PostgreSQL has ended this session. An ended session's socket reads as ready (the
    server's farewell, or EOF); an idle healthy one does not. So a poll of no time (a microsecond)
    spares the round trip of an empty query on every request, and only a socket with something to
    read gets one."""
    if conn.closed or conn.broken:
        return True
    # poll, not select: select refuses descriptors past 1024, which a busy server reaches.
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        await conn.execute("")
    except psycopg.Error:
        return True
    return False


# How long a read or a check waits for a standby's connection before judging the standby down.
STANDBY_CONNECT_WAIT_SECONDS = 0.5


class Repository:
    def __init__(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], standbys: Standbys | None = None
    ) -> None:
        self.pool = pool
        # DATABASE_READ_URL's standbys, for standby_read; None without any.
        self.standbys = standbys
        # The pool's connections that now run statements on kept generic plans (read(kept_plans=True)).
        self._kept_plans: weakref.WeakSet[psycopg.AsyncConnection[Row]] = weakref.WeakSet()
        self._down = False
        self._connect_errors_seen = 0
        # The pushed discovery generation, when the app runs a listener (app.py).
        self.feed: GenerationFeed | None = None

    @property
    def has_standbys(self) -> bool:
        """Whether reads may go to streaming standbys (DATABASE_READ_URL)."""
        return self.standbys is not None

    def pushed_generation(self) -> int | None:
        """The discovery generation without a round trip, while the listener vouches for it."""
        return self.feed.current() if self.feed is not None else None

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30.0)
        if self.standbys is not None:
            await self.standbys.open()

    async def close(self) -> None:
        if self.standbys is not None:
            await self.standbys.close()
        await self.pool.close()

    async def standby_read(
        self, work: Callable[[Queries], Awaitable[T]], *, after: int = 0, kept_plans: bool = False
    ) -> T:
        """`work`'s answer, read on a standby in rotation that has replayed the primary's WAL up to
        `after` (see wal_position), else on the primary. `work` only reads: when the standby fails
        under it (stopped, a replay conflict) it runs again on the primary, so the caller never sees a
        standby's failure. Without standbys it is a plain read on the primary."""
        member = self.standbys.pick() if self.standbys is not None else None
        if member is not None:
            assert self.standbys is not None
            try:
                async with member.pool.connection(timeout=STANDBY_CONNECT_WAIT_SECONDS) as conn:
                    await self._plan_mode(conn, kept_plans)
                    q = Queries(conn)
                    if after <= member.replayed or await self.standbys.caught_up(member, q, after):
                        answer = await work(q)
                        DB_READS.labels(member.label).inc()
                        return answer
            except (psycopg.OperationalError, TimeoutError) as exc:
                self.standbys.failed(member, exc)
        async with self.read(kept_plans=kept_plans) as q:
            answer = await work(q)
        DB_READS.labels("primary").inc()
        return answer

    async def wal_position(self) -> int:
        """Where the primary's WAL ends now: a standby that has replayed this far sees what is committed."""
        async with self.read() as q:
            return await q.wal_position()

    @asynccontextmanager
    async def read(self, *, kept_plans: bool = False) -> AsyncIterator[Queries]:
        """Statements outside a transaction. Connections plan each statement for its parameters
        (make_pool); with `kept_plans` they run on the plan the connection keeps for every execution,
        which only suits statements whose best plan does not depend on their values (unfiltered
        ranked searches: planning was about a third of one's database time, docs/discovery.md)."""
        async with _translated(), self.connection() as conn:
            await self._plan_mode(conn, kept_plans)
            yield Queries(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with _translated(), self.connection() as conn:
            await self._plan_mode(conn, False)
            async with conn.transaction():
                yield Queries(conn)
            if self.feed is not None and self.feed.current() is not None:
                await self._observe_generation(conn)

    async def _observe_generation(self, conn: psycopg.AsyncConnection[Row]) -> None:
        # This process's next answer must show what it just wrote, before the notification comes back.
        try:
            generation = await Queries(conn).discovery_generation()
        except psycopg.Error:
            assert self.feed is not None
            self.feed.doubt()  # committed all the same: the caller must not see an error
            return
        assert self.feed is not None
        self.feed.observe(generation)

    @asynccontextmanager
    async def connection(self, wait: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A pooled connection that PostgreSQL has not closed. A caller waits `wait` seconds (the pool's own
        by default) for one, except while the database is known to be down: then only
        DOWN_WAIT_SECONDS, so a request that needs several statements is refused in one wait, not one
        per statement, and the requests of an outage do not pile up. The pool keeps reconnecting
        meanwhile, and the first connection it hands out ends the state."""
        try:
            conn = await self._live_connection(DOWN_WAIT_SECONDS if self._down else wait)
        except PoolTimeout as exc:
            # Down, rather than busy: the pool has failed to connect since the last time it was judged,
            # or no connection is out serving anyone. Busy: connections are out, serving other requests,
            # and none failed to connect; the client is told so, and to come back sooner.
            stats = self.pool.get_stats()
            errors = stats.get("connections_errors", 0)
            in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
            self._down = self._down or errors > self._connect_errors_seen or in_use <= 0
            self._connect_errors_seen = errors
            if not self._down:
                raise Busy() from exc
            raise
        self._down = False
        try:
            yield conn
        finally:
            await self.pool.putconn(conn)

    async def _live_connection(self, wait: float | None) -> psycopg.AsyncConnection[Row]:
        """A restarted PostgreSQL ends every session it had, and the pool kept handing out the idle ones
        it held, one failed request each (8 of 192 requests refused 15 s after the first success). So a
        connection is looked at before use; the first one found closed means the others idle beside it
        are closed too (one restart ended them all), so the pool is drained at once rather than each
        being found in turn. psycopg_pool's own `check` would do one at a time, with a growing pause
        between attempts: 10 stale connections outlasted a 3 s wait."""
        deadline = time.monotonic() + (self.pool.timeout if wait is None else wait)
        for _ in range(STALE_RETRIES):
            conn = await self.pool.getconn(max(0.0, deadline - time.monotonic()))
            if not await _closed_by_server(conn):
                return conn
            await conn.close()  # a closed connection is discarded, and replaced, when returned
            await self.pool.putconn(conn)
            await self.pool.drain()
        return await self.pool.getconn(max(0.0, deadline - time.monotonic()))

    async def _plan_mode(self, conn: psycopg.AsyncConnection[Row], kept: bool) -> None:
        # The mode stays with the connection and changes only when the next user wants the other one:
        # a search in a transaction of its own (BEGIN, SET LOCAL, COMMIT) cost more than the switch.
        if (conn in self._kept_plans) == kept:
            return
        await Queries(conn).set_plan_mode(kept)
        if kept:
            self._kept_plans.add(conn)
        else:
            self._kept_plans.discard(conn)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name or ""
        if constraint.startswith("mcp_servers_name"):
            raise AlreadyRegistered("a server with this name is already listed", field="slug") from None
        raise AlreadyRegistered("this already exists") from None
    except (psycopg.OperationalError, TimeoutError) as exc:
        # PoolTimeout is an OperationalError (no connection within the pool's timeout: the database is
        # down or saturated), and so are a dropped connection and QueryCanceled (statement_timeout).
        raise Unavailable("the database is unavailable") from exc


# The pool retries a failed connection with a doubling delay (1, 2, 4 ... s) until it gives up; the
# next request that waits then starts again at once. Giving up after 10 s keeps the delay at most a
# few seconds, so a database that comes back after a long outage is used again within seconds.
RECONNECT_GIVE_UP_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5


def make_pool(
    conninfo: str,
    max_size: int,
    *,
    timeout: float = 10.0,
    statement_timeout: float = 0.0,
    name: str = "mcplookup",
) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]]:
    """`timeout`: seconds a caller waits for a connection, then PoolTimeout (Unavailable). While the
    server is down no connection comes, so this is how long a request takes to be refused: the app
    passes MCPLOOKUP_DB_POOL_TIMEOUT; commands and benchmarks keep the longer default.
    `statement_timeout`: seconds one statement may run on these connections; 0 leaves it unlimited."""
    options = "-c plan_cache_mode=force_custom_plan"
    if statement_timeout > 0:
        options += f" -c statement_timeout={round(statement_timeout * 1000)}"
    # Prepared at first use (parse and rewrite once per connection), and by default planned for the
    # actual parameters: a cached generic plan cannot see which optional filters are set and would
    # scan where the custom plan uses an index. Measured on the 1k bench database: discover 5.2 ms
    # unprepared, 4.1 ms this way. Unfiltered ranked searches opt into the kept generic plan
    # (Repository.read's kept_plans), checked for sequential scans by tests/test_discovery_scale.py.
    kwargs: dict[str, Any] = {
        "row_factory": dict_row,
        "autocommit": True,
        "prepare_threshold": 0,
        "options": options,
    }
    if "connect_timeout" not in conninfo_to_dict(conninfo):
        # libpq waits for ever by default: one connection attempt to an unreachable host would hold
        # up the pool's reconnecting until the operating system gave up.
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        configure=_configure,
        open=False,
        timeout=timeout,
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
        name=name,
    )


async def _configure(conn: psycopg.AsyncConnection[Row]) -> None:
    # pydantic's JSON parser reads jsonb columns (packages, remotes) in two thirds of the standard
    # library's time: 0.08 ms of a page of ten seed servers.
    set_json_loads(pydantic_core.from_json, conn)
