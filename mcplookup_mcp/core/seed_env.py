"""The variables of the Next.js deployment MCPLookup replaces (deploy/*.env carry them): each is honoured
under its old name or refused at start with the variable to use instead, so none is silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
    rate_limit_per_minute: int | None  # None: RATE_LIMIT_MAX_REQUESTS is unset


def read_seed_variables(env: Mapping[str, str], port: int) -> SeedValues:
    """Refuse the old names MCPLookup does not read, and translate the ones it does."""
    from mcplookup_mcp.core.settings import ConfigError, _bool, _int

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
    if env.get("RATE_LIMIT_MAX_REQUESTS", "").strip():
        per_minute = _int(env, "RATE_LIMIT_MAX_REQUESTS", 30, 1, 100_000)
        own = env.get("MCPLOOKUP_RATE_LIMIT_PER_MINUTE", "").strip()
        if own and own != str(per_minute):
            raise ConfigError(
                f"RATE_LIMIT_MAX_REQUESTS={per_minute} and MCPLOOKUP_RATE_LIMIT_PER_MINUTE={own} disagree: "
                "set one of them"
            )
    return SeedValues(
        metrics_enabled=_bool(env, "ENABLE_METRICS", True),
        metrics_port=metrics_port,
        auto_discovery=_bool(env, "FEATURE_AUTO_DISCOVERY", False),
        rate_limit_per_minute=per_minute,
    )
