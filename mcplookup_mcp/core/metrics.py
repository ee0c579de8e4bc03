"""Prometheus metrics. Names match the ones the alerts and dashboards use."""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from mcplookup_mcp.core.vocab import PROBE_STATUSES

# Set by `mcplookup serve --workers N`: each worker process then writes its figures to files there, and
# whichever worker answers /metrics reports the sum over all of them.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by method, route template and status",
    ("method", "path", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by method, route template and status", ("method", "path", "status")
)
VERIFICATION_ATTEMPTS = Counter(
    "verification_attempts_total", "Domain verification attempts that looked up DNS"
)
VERIFICATION_SUCCESSES = Counter("verification_successes_total", "Domain verifications that succeeded")
# The seed's alert divides this by verification_attempts_total one-to-one, so the two carry the same
# labels (none); the reason of each failure is counted beside it, under its own name.
VERIFICATION_FAILURES = Counter("verification_failures_total", "Domain verifications that did not succeed")
VERIFICATION_FAILURES_BY_REASON = Counter(
    "verification_failures_by_reason_total",
    "Domain verifications that did not succeed, by reason",
    ("reason",),
)
# Every reason a verification can fail with (verification.Outcome's values but "verified"). Each series
# exists from the start at 0: rate() needs a sample before the first failure to see the increase.
VERIFICATION_FAILURE_REASONS = ("pending", "wrong_value", "dns_error")
for _reason in VERIFICATION_FAILURE_REASONS:
    VERIFICATION_FAILURES_BY_REASON.labels(reason=_reason)
MCP_TOOL_CALLS = Counter("mcp_tool_calls_total", "MCP tool calls by tool and outcome", ("tool", "outcome"))
# The whole /mcp request a tool call came in (the SDK's work included), labelled by tool: the series an
# alert on MCP discovery latency selects (tool="discover_servers"), as path="/api/v1/discover" for REST.
MCP_TOOL_DURATION = Histogram(
    "mcp_tool_call_duration_seconds",
    "MCP tools/call requests by tool and outcome, seconds from request to response",
    ("tool", "outcome"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MCP_FAST_PATH = Counter(
    "mcp_fast_path_total",
    "discover_servers calls answered directly (served) or handed to the SDK after a closer look (declined)",
    ("result",),
)
MCP_FAST_PATH_RESULTS = ("served", "declined")
# Read from the database at scrape time: across worker processes the latest reading is the true one.
TOTAL_REGISTERED_SERVERS = Gauge(
    "total_registered_servers",
    "Listed servers (active, verified or imported), refreshed on scrape",
    multiprocess_mode="mostrecent",
)
HEALTHY_SERVERS_PERCENTAGE = Gauge(
    "healthy_servers_percentage",
    "Listed remote servers, probed at least once, whose last probe counted as up (percent); "
    "NaN while none has been probed",
    multiprocess_mode="mostrecent",
)
# NaN, not 0, until a probed server exists: a fresh deployment is not an unhealthy one, and a comparison
# with NaN is false, so "healthy_servers_percentage < 80" stays quiet.
HEALTHY_SERVERS_PERCENTAGE.set(float("nan"))
HEALTH_PROBES = Counter(
    "health_probes_total", "Health probes by resulting status and trigger", ("status", "trigger")
)
REVERIFICATIONS = Counter(
    "reverification_checks_total",
    "Scheduled re-checks of verified domains' TXT records, by outcome",
    ("outcome",),
)
THIRD_PARTY_READS = Counter(
    "third_party_reads_total",
    "READMEs and package registry documents read, by source (readme, npm, pypi) and outcome (read, "
    "unchanged, absent, failed)",
    ("source", "outcome"),
)
# What a probe concludes (core/vocab.py) and the monitor's triggers; ownership.RecheckSummary's outcomes
# (tests hold the copies equal: core may not import those layers).
HEALTH_PROBE_STATUSES = PROBE_STATUSES
HEALTH_PROBE_TRIGGERS = ("schedule", "realtime")
REVERIFICATION_OUTCOMES = (
    "confirmed",
    "grace_started",
    "in_grace",
    "unverified",
    "still_unverified",
    "restored",
    "inconclusive",
)
DISCOVER_CACHE = Counter(
    "discover_cache_total",
    "Discovery answers: fresh from this process's cache (hit), stale from it while computed again "
    "(stale), computed (miss), or shared with a search already running (joined)",
    ("result",),
)
DISCOVERY_GENERATION_PUSH_UP = Gauge(
    "discovery_generation_push_up",
    "1 while this process's listener pushes the discovery generation (cached answers need no database "
    "read), else 0 (each answer reads it)",
    multiprocess_mode="livemin",
)
DISCOVERY_GENERATION_READS = Counter(
    "discovery_generation_reads_total",
    "Discovery generation reads made for a request, because the pushed value was not trusted",
)

# Discovery analytics (analytics.py): events dropped because the buffer was full or a write failed.
ANALYTICS_DROPPED = Counter(
    "discovery_events_dropped_total", "Discovery analytics events not stored, by reason", ("reason",)
)
ANALYTICS_WRITTEN = Counter("discovery_events_written_total", "Discovery analytics events stored")
for _reason in ("buffer_full", "write_failed"):
    ANALYTICS_DROPPED.labels(reason=_reason)
# Per process; summed over processes (livesum) they read as the whole deployment's.
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections lent out by this process's pools",
    ("pool",),
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "db_pool_requests_waiting",
    "Requests waiting for a database connection",
    ("pool",),
    multiprocess_mode="livesum",
)
# Streaming standbys (DATABASE_READ_URL, store/standby.py), labelled by host:port/dbname.
DB_STANDBY_LAG = Gauge(
    "db_standby_lag_seconds",
    "How far a standby's replay is behind the primary, seconds (0 when it has replayed all the primary "
    "wrote; +Inf while it does not answer)",
    ("standby",),
    multiprocess_mode="max",
)
DB_STANDBY_IN_ROTATION = Gauge(
    "db_standby_in_rotation",
    "1 while a standby serves reads, 0 while it is left out (down, lagging, or not in recovery)",
    ("standby",),
    multiprocess_mode="livemin",
)
DB_READS = Counter(
    "db_public_reads_total",
    "Reads that may be served by a standby (discovery, pages, /v0.1), by the pool that served them "
    "(a standby's label, or primary)",
    ("pool",),
)
DB_UP = Gauge(
    "db_up", "1 when the database answered this process's last check, else 0", multiprocess_mode="livemin"
)
_redis_up: Gauge | None = None


def redis_up_gauge() -> Gauge:
    """redis_up, created only by a process that has REDIS_URL: without Redis by design there is no series,
    so nothing (the RedisDown alert above all) reads a deployment without Redis as one whose Redis is down."""
    global _redis_up
    if _redis_up is None:
        _redis_up = Gauge(
            "redis_up",
            "1 when Redis answered this process's last check, else 0 (absent without REDIS_URL)",
            multiprocess_mode="livemin",
        )
    return _redis_up


SCHEDULER_LEADER = Gauge(
    "scheduler_leader",
    "1 in the process that holds the scheduler's leadership, else 0",
    multiprocess_mode="livesum",
)
SCHEDULER_LAST_ROUND = Gauge(
    "scheduler_last_round_timestamp_seconds",
    "Unix time the leader last finished a round of probing (probes made or none due)",
    multiprocess_mode="max",
)
# Following upstream registries (services/upstream_sync.py); `upstream` is a configured base URL, so the
# label has as many values as MCPLOOKUP_UPSTREAM_REGISTRIES names.
SYNC_ENTRIES = Counter(
    "sync_entries_total",
    "Upstream registry entries read by sync: applied (created or changed here), unchanged, refused",
    ("upstream", "outcome"),
)
SYNC_FAILURES = Counter(
    "sync_failures_total",
    "Upstream page requests that failed, by kind (rate_limited, server_error, timeout, network, garbage, "
    "too_large, blocked, redirected, refused); retried ones included",
    ("upstream", "reason"),
)
SYNC_RUNS = Counter(
    "sync_runs_total",
    "Sync runs per upstream: finished (reached the last page) or stopped (time budget or an error)",
    ("upstream", "result"),
)
# Read from the database at scrape time, like total_registered_servers: every replica reports it.
SYNC_LAG = Gauge(
    "sync_lag_seconds",
    "Seconds since the last finished sync pass of an upstream began: our copy is current as of then",
    ("upstream",),
    multiprocess_mode="mostrecent",
)
DISCOVER_SHARED_CACHE = Counter(
    "discover_shared_cache_total",
    "Discovery answers this process did not hold, looked up in Redis: found (hit), not there (miss), "
    "or Redis unavailable (unavailable)",
    ("result",),
)
REDIS_FALLBACKS = Counter(
    "redis_fallbacks_total",
    "Redis calls not made or failed, answered without Redis, by use (cache, ratelimit)",
    ("use",),
)
REDIS_OUTAGES = Counter("redis_outages_total", "Times Redis stopped answering (one per outage)")
RATE_LIMITED = Counter(
    "rate_limited_total", "Requests refused by the rate limits, by action and subject", ("action", "subject")
)
DISCOVER_SEARCH_MODE = Counter(
    "discover_search_mode_total",
    "Ranked discovery searches (cache misses with a query) by how they were ranked: fused (words and "
    "meaning), lexical (no model configured or loaded), or fallback (a model is loaded but this search "
    "was ranked lexically: the question's embedding was slow or failed, or no vectors are stored yet)",
    ("mode",),
)
SEARCH_MODES = ("fused", "lexical", "fallback")
# Every known label set exists at 0 from the start, so rate() and increase() see the first refusal or
# fallback instead of a series that appears with it.
for _mode in SEARCH_MODES:
    DISCOVER_SEARCH_MODE.labels(mode=_mode)
for _result in ("hit", "miss", "unavailable"):
    DISCOVER_SHARED_CACHE.labels(result=_result)
for _use in ("cache", "ratelimit"):
    REDIS_FALLBACKS.labels(use=_use)
for _result in ("hit", "stale", "miss", "joined"):
    DISCOVER_CACHE.labels(result=_result)
for _result in MCP_FAST_PATH_RESULTS:
    MCP_FAST_PATH.labels(result=_result)
for _status in HEALTH_PROBE_STATUSES:
    for _trigger in HEALTH_PROBE_TRIGGERS:
        HEALTH_PROBES.labels(status=_status, trigger=_trigger)
for _outcome in REVERIFICATION_OUTCOMES:
    REVERIFICATIONS.labels(outcome=_outcome)
for _action in ("discover", "register", "verify"):
    for _subject in ("address", "key"):
        RATE_LIMITED.labels(action=_action, subject=_subject)


def exposition() -> bytes:
    """The text /metrics serves: this process's figures, or every worker's when there are several."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
