"""The variables of the Next.js deployment MCPLookup replaces (deploy/*.env carry them): each is honoured
under its old name or refused at start with the variable to use instead, so none is silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcplookup_mcp.core.settings import ConfigError

RATE_LIMIT_WINDOW_MS = 60_000  # the limiter counts per minute

# Old name -> what to set instead. Each is refused whenever it is set, even to an empty value.
REFUSED: dict[str, str] = {
    "NODE_ENV": "set MCPLOOKUP_ENV (production, staging, development or test) instead",
    "NEXT_PUBLIC_API_URL": "set MCPLOOKUP_PUBLIC_URL (the URL clients reach, e.g. https://mcplookup.example.com)",
    "NEXT_PUBLIC_BASE_URL": "set MCPLOOKUP_PUBLIC_URL (the URL clients reach, e.g. https://mcplookup.example.com)",
    "NEXTAUTH_URL": "set MCPLOOKUP_PUBLIC_URL; MCPLookup has no login pages",
    "NEXTAUTH_SECRET": (
        "remove it: MCPLookup has no user sessions (owners use per-domain API keys); "
        "set MCPLOOKUP_CURSOR_SECRET for the key that signs page cursors"
    ),
    "JWT_SECRET": (
        "remove it: MCPLookup issues no JWTs (owners use per-domain API keys); "
        "set MCPLOOKUP_CURSOR_SECRET for the key that signs page cursors"
    ),
    "CORS_ORIGINS": "set MCPLOOKUP_ALLOWED_ORIGINS (comma-separated origins, e.g. https://app.example.com)",
    "ALLOWED_HOSTS": "set MCPLOOKUP_ALLOWED_HOSTS (comma-separated Host values)",
    "HEALTH_CHECK_INTERVAL": "set MCPLOOKUP_PROBE_INTERVAL_SECONDS (in seconds, not milliseconds)",
    "HEALTH_CHECK_TIMEOUT": "set MCPLOOKUP_PROBE_TIMEOUT (in seconds, not milliseconds)",
    "DNS_TIMEOUT": "set MCPLOOKUP_DNS_TIMEOUT (in seconds, not milliseconds)",
    "DNS_SERVERS": "set MCPLOOKUP_DNS_NAMESERVERS (comma-separated ip[:port])",
    "VERIFICATION_TTL_HOURS": "set MCPLOOKUP_CLAIM_TTL_HOURS",
    "CACHE_TTL": "set MCPLOOKUP_DISCOVER_CACHE_SECONDS (in seconds)",
    "DATABASE_POOL_SIZE": "set MCPLOOKUP_DB_POOL_SIZE",
    "UV_THREADPOOL_SIZE": (
        "remove it: it sizes Node.js's libuv thread pool, and MCPLookup is a Python server; "
        "set MCPLOOKUP_WORKERS (or serve --workers) for more server processes"
    ),
    "NODE_OPTIONS": (
        "remove it: it passes options to Node.js, and MCPLookup is a Python server; bound its memory with "
        "the container's limit (compose deploy.resources, Kubernetes resources.limits)"
    ),
    "SENTRY_DSN": (
        "remove it: MCPLookup sends no errors to Sentry; errors are JSON log lines on stderr and "
        "counted in /metrics"
    ),
}


@dataclass(frozen=True)
class SeedValues:
    metrics_enabled: bool
    metrics_port: int | None  # None: /metrics on the app's own port
    auto_discovery: bool
    # None below: the old name is unset, and MCPLookup's own setting (or default) holds.
    rate_limit_per_minute: int | None
    db_pool_size: int | None  # DATABASE_MAX_CONNECTIONS
    redis_pool_size: int | None  # REDIS_POOL_SIZE
    redis_timeout: float | None  # REDIS_TIMEOUT_MS, in seconds
    mock_dns_verification: bool | None  # MOCK_DNS_VERIFICATION


def _same_as_own(env: Mapping[str, str], old: str, value: object, own: str) -> None:
    """An old name and MCPLookup's own for one setting may both be set only to the same value."""
    given = env.get(own, "").strip()
    if given and given.lower() != str(value).lower():
        raise ConfigError(f"{old}={env[old].strip()} and {own}={given} disagree: set one of them")


def read_seed_variables(env: Mapping[str, str], port: int) -> SeedValues:
    """Refuse the old names MCPLookup does not read, and translate the ones it does."""
    from mcplookup_mcp.core.settings import _bool, _int

    for name, instead in REFUSED.items():
        if name in env:
            raise ConfigError(f"{name} is not read by MCPLookup: {instead}")
    metrics_port: int | None = None
    if env.get("METRICS_PORT", "").strip():
        metrics_port = _int(env, "METRICS_PORT", port, 1, 65535)
        if metrics_port == port:
            metrics_port = None
    window = _int(env, "RATE_LIMIT_WINDOW_MS", RATE_LIMIT_WINDOW_MS, 1, 86_400_000)
    if window != RATE_LIMIT_WINDOW_MS:
        raise ConfigError(
            f"RATE_LIMIT_WINDOW_MS={window}: MCPLookup's limit window is one minute; set "
            f"RATE_LIMIT_WINDOW_MS={RATE_LIMIT_WINDOW_MS} and RATE_LIMIT_MAX_REQUESTS to the per-minute "
            "figure, or use MCPLOOKUP_RATE_LIMIT_PER_MINUTE"
        )
    per_minute: int | None = None
    if _given(env, "RATE_LIMIT_MAX_REQUESTS"):
        per_minute = _int(env, "RATE_LIMIT_MAX_REQUESTS", 30, 1, 100_000)
        _same_as_own(env, "RATE_LIMIT_MAX_REQUESTS", per_minute, "MCPLOOKUP_RATE_LIMIT_PER_MINUTE")
    pool: int | None = None
    if _given(env, "DATABASE_MAX_CONNECTIONS"):
        # Each process's pool: the old server had one process, and so has a replica of MCPLookup by default.
        pool = _int(env, "DATABASE_MAX_CONNECTIONS", 10, 1, 200)
        _same_as_own(env, "DATABASE_MAX_CONNECTIONS", pool, "MCPLOOKUP_DB_POOL_SIZE")
    redis_pool = _int(env, "REDIS_POOL_SIZE", 0, 1, 10_000) if _given(env, "REDIS_POOL_SIZE") else None
    redis_timeout: float | None = None
    if _given(env, "REDIS_TIMEOUT_MS"):
        redis_timeout = _int(env, "REDIS_TIMEOUT_MS", 250, 10, 60_000) / 1000
    mock: bool | None = None
    if _given(env, "MOCK_DNS_VERIFICATION"):
        mock = _bool(env, "MOCK_DNS_VERIFICATION", False)
        _same_as_own(env, "MOCK_DNS_VERIFICATION", mock, "MCPLOOKUP_MOCK_DNS_VERIFICATION")
    return SeedValues(
        metrics_enabled=_bool(env, "ENABLE_METRICS", True),
        metrics_port=metrics_port,
        auto_discovery=_bool(env, "FEATURE_AUTO_DISCOVERY", False),
        rate_limit_per_minute=per_minute,
        db_pool_size=pool,
        redis_pool_size=redis_pool,
        redis_timeout=redis_timeout,
        mock_dns_verification=mock,
    )


def _given(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())
