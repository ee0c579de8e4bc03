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
VERIFICATION_FAILURES = Counter(
    "verification_failures_total", "Domain verifications that did not succeed, by reason", ("reason",)
)
MCP_TOOL_CALLS = Counter("mcp_tool_calls_total", "MCP tool calls by tool and outcome", ("tool", "outcome"))
MCP_FAST_PATH = Counter(
    "mcp_fast_path_total",
    "discover_servers calls answered directly (served) or handed to the SDK after a closer look (declined)",
    ("result",),
)
# Read from the database at scrape time: across worker processes the latest reading is the true one.
TOTAL_REGISTERED_SERVERS = Gauge(
    "total_registered_servers", "Listed servers (active), refreshed on scrape", multiprocess_mode="mostrecent"
)
HEALTHY_SERVERS_PERCENTAGE = Gauge(
    "healthy_servers_percentage",
    "Listed remote servers, probed at least once, whose last probe counted as up (percent)",
    multiprocess_mode="mostrecent",
)
HEALTH_PROBES = Counter(
    "health_probes_total", "Health probes by resulting status and trigger", ("status", "trigger")
)
REVERIFICATIONS = Counter(
    "reverification_checks_total",
    "Scheduled re-checks of verified domains' TXT records, by outcome",
    ("outcome",),
)
DISCOVER_CACHE = Counter(
    "discover_cache_total",
    "Discovery answers: fresh from this process's cache (hit), stale from it while computed again "
    "(stale), computed (miss), or shared with a search already running (joined)",
    ("result",),
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


def exposition() -> bytes:
    """The text /metrics serves: this process's figures, or every worker's when there are several."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
