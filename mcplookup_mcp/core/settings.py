"""Configuration, read once from the environment into a frozen object.

An invalid value raises `ConfigError` naming the variable; `mcplookup` turns it into a one-line
message and a non-zero exit. Anything meant for tests and development only is refused when
`MCPLOOKUP_ENV=production` (the default).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

ENVIRONMENTS = ("production", "staging", "development", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_WORKERS = 64  # serve --workers and MCPLOOKUP_WORKERS
# The largest request body REST and /mcp read (MCPLOOKUP_MAX_BODY_BYTES); the longest fields validation.py
# accepts fit in a fraction of it.
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class ConfigError(ValueError):
    """Invalid configuration."""


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    database_url: str | None = None
    # Streaming standbys that discovery and the other public reads use (DATABASE_READ_URL, comma-separated).
    database_read_urls: tuple[str, ...] = ()
    # A standby whose replay is further behind the primary than this is left out of rotation.
    read_max_lag_seconds: float = 10.0
    redis_url: str | None = None
    redis_prefix: str = "mcplookup"
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("mcplookup")))
    public_url: str = "http://127.0.0.1:8000"
    # Whether MCPLOOKUP_PUBLIC_URL was set: only then is public_url known to be what clients reach (the
    # OpenAPI document's base); the default merely follows PORT.
    public_url_given: bool = False
    allowed_hosts: tuple[str, ...] = (
        "127.0.0.1",
        "127.0.0.1:*",
        "localhost",
        "localhost:*",
        "[::1]",
        "[::1]:*",
    )
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    dns_timeout: float = 5.0
    claim_ttl_hours: float = 72.0
    allow_http_endpoints: bool = False
    probe_allow_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    rate_limit_per_minute: int = 30
    # Per client address and, counted apart, per API key; None: rate_limit_per_minute.
    rate_limit_discover_per_minute: int = 600
    rate_limit_register_per_minute: int | None = None
    rate_limit_verify_per_minute: int | None = None
    db_pool_size: int = 10
    # How long a request waits for a pooled connection before it is refused with 503 and Retry-After:
    # while PostgreSQL is down no connection comes, and the client should hear so in seconds.
    db_pool_timeout: float = 3.0
    # Seconds any one statement of the request pool may run (PostgreSQL's statement_timeout); 0: no limit.
    db_statement_timeout: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Proxies whose X-Forwarded-For is believed (see client_address.py); none by default.
    trusted_proxies: tuple[str, ...] = ()
    probe_ports: frozenset[int] = frozenset({443})
    probe_interval_seconds: float = 300.0
    probe_timeout: float = 10.0
    probe_degraded_ms: float = 2000.0
    probe_concurrency: int = 10
    probe_ca_bundle: str | None = None
    health_retention_days: float = 30.0
    scheduler: bool = True
    reverify_interval_hours: float = 24.0
    reverify_grace_hours: float = 72.0
    mock_dns_verification: bool = False
    cursor_secret: str = ""
    discover_cache_seconds: float = 15.0
    mcp_fast_path: bool = True
    workers: int = 1
    # The old deployment's names (mcplookup_mcp/core/seed_env.py): ENABLE_METRICS, FEATURE_AUTO_DISCOVERY.
    metrics_enabled: bool = True
    # METRICS_PORT when it differs from the app's port: /metrics is then served there only.
    metrics_port: int | None = None
    auto_discovery: bool = False
    analytics_retention_days: float = 90.0

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}={raw!r} is not a boolean: use true or false")


def _number(env: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{key}={raw!r} is out of range: it must be between {low:g} and {high:g}")
    return value


def _int(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    value = _number(env, key, default, low, high)
    if value != int(value):
        raise ConfigError(f"{key}={env.get(key)!r} must be a whole number")
    return int(value)


def _list(env: Mapping[str, str], key: str) -> tuple[str, ...] | None:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return None
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...], upper: bool) -> str:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{key}={raw!r} is not one of: {', '.join(choices)}")
    return value


def _url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return None
    if not raw.startswith(tuple(f"{s}://" for s in schemes)) and not raw.startswith(
        tuple(f"{s}:" for s in schemes)
    ):
        raise ConfigError(f"{key} must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return raw.strip()


def _read_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """DATABASE_READ_URL: one or more standby URLs, comma-separated (a URL holds no bare comma)."""
    parts = [part.strip() for part in env.get("DATABASE_READ_URL", "").split(",")]
    urls = []
    for part in parts:
        if part:
            checked = _url({"DATABASE_READ_URL": part}, "DATABASE_READ_URL", ("postgresql", "postgres"))
            assert checked is not None
            urls.append(checked)
    if len(set(urls)) != len(urls):
        raise ConfigError("DATABASE_READ_URL names the same standby twice")
    return tuple(urls)


def _nameservers(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    raw = env.get("MCPLOOKUP_DNS_NAMESERVERS", "")
    from mcplookup_mcp.core.nameservers import parse_nameservers

    try:
        return tuple(parse_nameservers(raw))
    except ValueError as exc:
        raise ConfigError(f"MCPLOOKUP_DNS_NAMESERVERS: {exc}") from None


def _cidrs(env: Mapping[str, str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    parts = _list(env, "MCPLOOKUP_PROBE_ALLOW_CIDRS") or ()
    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in parts)
    except ValueError as exc:
        raise ConfigError(f"MCPLOOKUP_PROBE_ALLOW_CIDRS: {exc}") from None


def _ports(env: Mapping[str, str], production: bool) -> frozenset[int]:
    parts = _list(env, "MCPLOOKUP_PROBE_PORTS") or ("443",)
    ports: set[int] = set()
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise ConfigError(f"MCPLOOKUP_PROBE_PORTS: {part!r} is not a port number")
        ports.add(int(part))
    if production and ports != {443}:
        # Listed endpoints are https on the domain; other ports mostly reach admin consoles and internal
        # services, so production probes only 443.
        raise ConfigError(
            "MCPLOOKUP_PROBE_PORTS other than 443 are for development and tests only; "
            "they are refused when MCPLOOKUP_ENV=production"
        )
    return frozenset(ports)


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    raw = env.get("MCPLOOKUP_PROBE_CA_BUNDLE", "").strip()
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ConfigError(f"MCPLOOKUP_PROBE_CA_BUNDLE={raw!r} is not a readable file")
    return raw


def _proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    from mcplookup_mcp.core.client_address import parse_proxies

    entries = _list(env, "MCPLOOKUP_TRUSTED_PROXIES") or ()
    try:
        parse_proxies(entries)
    except ValueError as exc:
        raise ConfigError(f"MCPLOOKUP_TRUSTED_PROXIES: {exc}") from None
    return entries


def _optional_int(env: Mapping[str, str], key: str, low: int, high: int) -> int | None:
    return _int(env, key, 0, low, high) if env.get(key, "").strip() else None


def _redis_prefix(env: Mapping[str, str]) -> str:
    raw = env.get("MCPLOOKUP_REDIS_PREFIX", "").strip()
    if not raw:
        return "mcplookup"
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", raw):
        raise ConfigError(
            f"MCPLOOKUP_REDIS_PREFIX={raw!r} must be 1 to 64 letters, digits, dots, hyphens or underscores"
        )
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable; raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ
    mode = _choice(env, "MCPLOOKUP_ENV", "production", ENVIRONMENTS, upper=False)
    port = _int(env, "PORT", 8000, 1, 65535)
    host = env.get("MCPLOOKUP_HOST", "127.0.0.1").strip() or "127.0.0.1"
    allow_http = _bool(env, "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS", False)
    cidrs = _cidrs(env)
    if mode == "production":
        if allow_http:
            raise ConfigError(
                "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS=true is for development and tests only; "
                "it is refused when MCPLOOKUP_ENV=production"
            )
        if cidrs:
            raise ConfigError(
                "MCPLOOKUP_PROBE_ALLOW_CIDRS is for development and tests only; "
                "it is refused when MCPLOOKUP_ENV=production"
            )
    mock_dns = _bool(env, "MCPLOOKUP_MOCK_DNS_VERIFICATION", False)
    if mock_dns and mode == "production":
        raise ConfigError(
            "MCPLOOKUP_MOCK_DNS_VERIFICATION=true accepts every claim without DNS and is for staging, "
            "development and tests only; it is refused when MCPLOOKUP_ENV=production"
        )
    public_url = _public_url(env, port)
    from mcplookup_mcp.core.seed_env import read_seed_variables

    seed = read_seed_variables(env, port)
    defaults = Settings()
    data_dir_raw = env.get("MCPLOOKUP_DATA_DIR", "").strip()
    return Settings(
        env=mode,
        host=host,
        port=port,
        log_level=_choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        database_url=_url(env, "DATABASE_URL", ("postgresql", "postgres")),
        database_read_urls=_read_urls(env),
        read_max_lag_seconds=_number(env, "MCPLOOKUP_READ_MAX_LAG_SECONDS", 10.0, 0.1, 3600.0),
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        redis_prefix=_redis_prefix(env),
        data_dir=Path(data_dir_raw).expanduser() if data_dir_raw else defaults.data_dir,
        public_url=public_url.rstrip("/"),
        public_url_given=bool(env.get("MCPLOOKUP_PUBLIC_URL", "").strip()),
        allowed_hosts=_list(env, "MCPLOOKUP_ALLOWED_HOSTS") or defaults.allowed_hosts,
        allowed_origins=_list(env, "MCPLOOKUP_ALLOWED_ORIGINS") or defaults.allowed_origins,
        dns_nameservers=_nameservers(env),
        dns_timeout=_number(env, "MCPLOOKUP_DNS_TIMEOUT", 5.0, 0.1, 60.0),
        claim_ttl_hours=_number(env, "MCPLOOKUP_CLAIM_TTL_HOURS", 72.0, 0.01, 24 * 30),
        allow_http_endpoints=allow_http,
        probe_allow_cidrs=cidrs,
        rate_limit_per_minute=seed.rate_limit_per_minute
        or _int(env, "MCPLOOKUP_RATE_LIMIT_PER_MINUTE", 30, 1, 100_000),
        rate_limit_discover_per_minute=_int(
            env, "MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE", 600, 1, 10_000_000
        ),
        rate_limit_register_per_minute=_optional_int(
            env, "MCPLOOKUP_RATE_LIMIT_REGISTER_PER_MINUTE", 1, 100_000
        ),
        rate_limit_verify_per_minute=_optional_int(env, "MCPLOOKUP_RATE_LIMIT_VERIFY_PER_MINUTE", 1, 100_000),
        db_pool_size=_int(env, "MCPLOOKUP_DB_POOL_SIZE", 10, 1, 200),
        db_pool_timeout=_number(env, "MCPLOOKUP_DB_POOL_TIMEOUT", 3.0, 0.1, 60.0),
        db_statement_timeout=_number(env, "MCPLOOKUP_DB_STATEMENT_TIMEOUT", 30.0, 0.0, 3600.0),
        max_body_bytes=_int(env, "MCPLOOKUP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 16 * 1024 * 1024),
        workers=_int(env, "MCPLOOKUP_WORKERS", 1, 1, MAX_WORKERS),
        discover_cache_seconds=_number(env, "MCPLOOKUP_DISCOVER_CACHE_SECONDS", 15.0, 0.0, 3600.0),
        mcp_fast_path=_bool(env, "MCPLOOKUP_MCP_FAST_PATH", True),
        trusted_proxies=_proxies(env),
        probe_ports=_ports(env, mode == "production"),
        probe_interval_seconds=_number(env, "MCPLOOKUP_PROBE_INTERVAL_SECONDS", 300.0, 10.0, 86400.0),
        probe_timeout=_number(env, "MCPLOOKUP_PROBE_TIMEOUT", 10.0, 0.5, 120.0),
        probe_degraded_ms=_number(env, "MCPLOOKUP_PROBE_DEGRADED_MS", 2000.0, 10.0, 120_000.0),
        probe_concurrency=_int(env, "MCPLOOKUP_PROBE_CONCURRENCY", 10, 1, 500),
        probe_ca_bundle=_ca_bundle(env),
        health_retention_days=_number(env, "MCPLOOKUP_HEALTH_RETENTION_DAYS", 30.0, 7.0, 3650.0),
        scheduler=_bool(env, "MCPLOOKUP_SCHEDULER", True),
        reverify_interval_hours=_number(env, "MCPLOOKUP_REVERIFY_INTERVAL_HOURS", 24.0, 0.01, 24 * 30),
        reverify_grace_hours=_number(env, "MCPLOOKUP_REVERIFY_GRACE_HOURS", 72.0, 0, 24 * 90),
        mock_dns_verification=mock_dns,
        cursor_secret=env.get("MCPLOOKUP_CURSOR_SECRET", "").strip(),
        analytics_retention_days=_number(env, "MCPLOOKUP_ANALYTICS_RETENTION_DAYS", 90.0, 1.0, 3650.0),
        metrics_enabled=seed.metrics_enabled,
        metrics_port=seed.metrics_port,
        auto_discovery=seed.auto_discovery,
    )


def _public_url(env: Mapping[str, str], port: int) -> str:
    raw = env.get("MCPLOOKUP_PUBLIC_URL", "").strip()
    if not raw:
        return f"http://127.0.0.1:{port}"
    checked = _url(env, "MCPLOOKUP_PUBLIC_URL", ("https", "http"))
    assert checked is not None
    if "?" in checked or "#" in checked or "@" in checked:
        raise ConfigError(
            "MCPLOOKUP_PUBLIC_URL must be a plain base URL such as https://mcplookup.example.com"
        )
    return checked
