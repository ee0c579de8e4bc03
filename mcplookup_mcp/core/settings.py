"""Configuration, read once from the environment into a frozen object.

An invalid value raises `ConfigError` naming the variable; `mcplookup` turns it into a one-line
message and a non-zero exit. Anything meant for tests and development only is refused when
`MCPLOOKUP_ENV=production` (the default).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

ENVIRONMENTS = ("production", "staging", "development", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Other spellings of a level: the old deployment's production value was LOG_LEVEL=warn.
LOG_LEVEL_ALIASES = {"WARN": "WARNING"}
MAX_WORKERS = 64  # serve --workers and MCPLOOKUP_WORKERS
# The largest request body REST and /mcp read (MCPLOOKUP_MAX_BODY_BYTES); the longest fields validation.py
# accepts fit in a fraction of it.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_UPSTREAM = "https://registry.modelcontextprotocol.io"


class ConfigError(ValueError):
    """Invalid configuration."""


# Every MCPLOOKUP_* name anything in this project reads. Any other MCPLOOKUP_* variable in the environment
# stops the start (a misspelt or retired name would otherwise change nothing, silently). Each name is a
# plain string literal: tests/test_settings_names.py checks that every "MCPLOOKUP_..." literal in the
# package is here.
KNOWN_VARIABLES: frozenset[str] = frozenset(
    {
        # read by the server (load_settings, below)
        "MCPLOOKUP_ALLOWED_HOSTS",
        "MCPLOOKUP_ALLOWED_ORIGINS",
        "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS",
        "MCPLOOKUP_ANALYTICS_RETENTION_DAYS",
        "MCPLOOKUP_CLAIM_TTL_HOURS",
        "MCPLOOKUP_CURSOR_SECRET",
        "MCPLOOKUP_DATA_DIR",
        "MCPLOOKUP_DB_POOL_SIZE",
        "MCPLOOKUP_DB_POOL_TIMEOUT",
        "MCPLOOKUP_DB_STATEMENT_TIMEOUT",
        "MCPLOOKUP_DISCOVER_CACHE_SECONDS",
        "MCPLOOKUP_DISCOVER_GENERATION_REFRESH_MS",
        "MCPLOOKUP_DNS_NAMESERVERS",
        "MCPLOOKUP_DNS_TIMEOUT",
        "MCPLOOKUP_EMBEDDING_MODEL",
        "MCPLOOKUP_EMBEDDING_TIMEOUT",
        "MCPLOOKUP_ENV",
        "MCPLOOKUP_HEALTH_RETENTION_DAYS",
        "MCPLOOKUP_HOST",
        "MCPLOOKUP_MAX_BODY_BYTES",
        "MCPLOOKUP_MCP_FAST_PATH",
        "MCPLOOKUP_MOCK_DNS_VERIFICATION",
        "MCPLOOKUP_NPM_REGISTRY_URL",
        "MCPLOOKUP_PROBE_ALLOW_CIDRS",
        "MCPLOOKUP_PROBE_CA_BUNDLE",
        "MCPLOOKUP_PROBE_CONCURRENCY",
        "MCPLOOKUP_PROBE_DEGRADED_MS",
        "MCPLOOKUP_PROBE_INTERVAL_SECONDS",
        "MCPLOOKUP_PROBE_PORTS",
        "MCPLOOKUP_PROBE_TIMEOUT",
        "MCPLOOKUP_PUBLIC_URL",
        "MCPLOOKUP_PYPI_URL",
        "MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE",
        "MCPLOOKUP_RATE_LIMIT_PER_MINUTE",
        "MCPLOOKUP_RATE_LIMIT_REGISTER_PER_MINUTE",
        "MCPLOOKUP_RATE_LIMIT_VERIFY_PER_MINUTE",
        "MCPLOOKUP_README_BASE_URL",
        "MCPLOOKUP_README_MAX_BYTES",
        "MCPLOOKUP_READ_MAX_LAG_SECONDS",
        "MCPLOOKUP_REDIS_PREFIX",
        "MCPLOOKUP_REVERIFY_GRACE_HOURS",
        "MCPLOOKUP_REVERIFY_INTERVAL_HOURS",
        "MCPLOOKUP_SCHEDULER",
        "MCPLOOKUP_SYNC_INTERVAL_SECONDS",
        "MCPLOOKUP_SYNC_MAX_PAGE_BYTES",
        "MCPLOOKUP_SYNC_MAX_SECONDS",
        "MCPLOOKUP_SYNC_PAGE_SIZE",
        "MCPLOOKUP_SYNC_TIMEOUT",
        "MCPLOOKUP_THIRD_PARTY_INTERVAL_HOURS",
        "MCPLOOKUP_THIRD_PARTY_TEXT",
        "MCPLOOKUP_TRUSTED_PROXIES",
        "MCPLOOKUP_UPSTREAM_REGISTRIES",
        "MCPLOOKUP_WORKERS",
        # read by the test suite, the benches and compose.yaml, never by the server: CI sets them in the
        # environment of servers it starts, which must start all the same
        "MCPLOOKUP_REQUIRE_SERVICES",
        "MCPLOOKUP_TEST_DATABASE_URL",
        "MCPLOOKUP_TEST_REDIS_URL",
        "MCPLOOKUP_TEST_ARTIFACTS",
        "MCPLOOKUP_SEED_FILE",
        "MCPLOOKUP_IMAGE_TAG",
    }
)
# The test suite's own variables (MCPLOOKUP_TEST_*), whatever their name, are never the server's.
TEST_PREFIX = "MCPLOOKUP_TEST_"


def refuse_unknown_names(env: Mapping[str, str]) -> None:
    """Stop on an MCPLOOKUP_* variable nothing reads, naming the closest known one."""
    unknown = sorted(
        name
        for name in env
        if name.startswith("MCPLOOKUP_") and name not in KNOWN_VARIABLES and not name.startswith(TEST_PREFIX)
    )
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "see README.md, Configuration, for the names"
    others = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
    raise ConfigError(f"{name} is not a setting MCPLookup reads: {hint}{others}")


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
    # Each Redis call's deadline (REDIS_TIMEOUT_MS), and the most connections a process opens to Redis
    # (REDIS_POOL_SIZE; None: as many as calls run at once).
    redis_timeout: float = 0.25
    redis_pool_size: int | None = None
    cursor_secret: str = ""
    discover_cache_seconds: float = 15.0
    # How often the listener re-reads the pushed discovery generation; 0: no listener, read per answer.
    discover_generation_refresh_ms: int = 1000
    mcp_fast_path: bool = True
    workers: int = 1
    # The old deployment's names (mcplookup_mcp/core/seed_env.py): ENABLE_METRICS, FEATURE_AUTO_DISCOVERY.
    metrics_enabled: bool = True
    # METRICS_PORT when it differs from the app's port: /metrics is then served there only.
    metrics_port: int | None = None
    auto_discovery: bool = False
    analytics_retention_days: float = 90.0
    # Third-party text about each server: its repository's README and its packages' registry entries.
    third_party_text: bool = True
    third_party_interval_hours: float = 24.0
    readme_base_url: str = "https://raw.githubusercontent.com"
    readme_max_bytes: int = 512 * 1024
    npm_registry_url: str = "https://registry.npmjs.org"
    pypi_url: str = "https://pypi.org"
    # Upstream registries followed by `mcplookup sync` and the leader's sync job (docs/sync.md).
    upstream_registries: tuple[str, ...] = (DEFAULT_UPSTREAM,)
    sync_interval_seconds: float = 900.0
    sync_page_size: int = 100
    sync_max_seconds: float = 120.0
    sync_max_page_bytes: int = 4 * 1024 * 1024
    sync_timeout: float = 20.0
    # A sentence-transformers model directory (the `semantic` extra): discovery fuses meaning with words.
    embedding_model: str | None = None
    # Seconds a question may wait for its embedding before the answer is lexical (and says so).
    embedding_timeout: float = 0.25

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


def _upstreams(env: Mapping[str, str], production: bool) -> tuple[str, ...]:
    """MCPLOOKUP_UPSTREAM_REGISTRIES: unset, the official registry; set but empty, none (sync off)."""
    key = "MCPLOOKUP_UPSTREAM_REGISTRIES"
    if key not in env:
        return (DEFAULT_UPSTREAM,)
    found: list[str] = []
    for part in _list(env, key) or ():
        url = part.rstrip("/")
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/]*)?", url):
            raise ConfigError(
                f"{key}: {part!r} is not a base URL such as https://registry.modelcontextprotocol.io "
                "(no query, fragment or credentials)"
            )
        if production and not url.startswith("https://"):
            raise ConfigError(
                f"{key}: {part!r} is plain http, which is for development and tests only; "
                "it is refused when MCPLOOKUP_ENV=production"
            )
        if url not in found:
            found.append(url)
    return tuple(found)


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
    refuse_unknown_names(env)
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
    from mcplookup_mcp.core.seed_env import read_seed_variables

    seed = read_seed_variables(env, port)
    mock_dns = _bool(env, "MCPLOOKUP_MOCK_DNS_VERIFICATION", False)
    mock_name = "MCPLOOKUP_MOCK_DNS_VERIFICATION"
    if seed.mock_dns_verification is not None:
        mock_dns, mock_name = seed.mock_dns_verification, "MOCK_DNS_VERIFICATION"
    if mock_dns and mode == "production":
        raise ConfigError(
            f"{mock_name}=true accepts every claim without DNS and is for staging, "
            "development and tests only; it is refused when MCPLOOKUP_ENV=production"
        )
    public_url = _public_url(env, port)
    defaults = Settings()
    data_dir_raw = env.get("MCPLOOKUP_DATA_DIR", "").strip()
    return Settings(
        env=mode,
        host=host,
        port=port,
        log_level=_log_level(env),
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
        db_pool_size=seed.db_pool_size or _int(env, "MCPLOOKUP_DB_POOL_SIZE", 10, 1, 200),
        db_pool_timeout=_number(env, "MCPLOOKUP_DB_POOL_TIMEOUT", 3.0, 0.1, 60.0),
        db_statement_timeout=_number(env, "MCPLOOKUP_DB_STATEMENT_TIMEOUT", 30.0, 0.0, 3600.0),
        max_body_bytes=_int(env, "MCPLOOKUP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 16 * 1024 * 1024),
        workers=_int(env, "MCPLOOKUP_WORKERS", 1, 1, MAX_WORKERS),
        discover_cache_seconds=_number(env, "MCPLOOKUP_DISCOVER_CACHE_SECONDS", 15.0, 0.0, 3600.0),
        discover_generation_refresh_ms=_int(env, "MCPLOOKUP_DISCOVER_GENERATION_REFRESH_MS", 1000, 0, 60_000),
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
        redis_timeout=seed.redis_timeout or defaults.redis_timeout,
        redis_pool_size=seed.redis_pool_size,
        cursor_secret=env.get("MCPLOOKUP_CURSOR_SECRET", "").strip(),
        analytics_retention_days=_number(env, "MCPLOOKUP_ANALYTICS_RETENTION_DAYS", 90.0, 1.0, 3650.0),
        upstream_registries=_upstreams(env, mode == "production"),
        sync_interval_seconds=_number(env, "MCPLOOKUP_SYNC_INTERVAL_SECONDS", 900.0, 30.0, 7 * 86400.0),
        sync_page_size=_int(env, "MCPLOOKUP_SYNC_PAGE_SIZE", 100, 1, 100),
        sync_max_seconds=_number(env, "MCPLOOKUP_SYNC_MAX_SECONDS", 120.0, 1.0, 3600.0),
        sync_max_page_bytes=_int(
            env, "MCPLOOKUP_SYNC_MAX_PAGE_BYTES", 4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024
        ),
        sync_timeout=_number(env, "MCPLOOKUP_SYNC_TIMEOUT", 20.0, 0.5, 300.0),
        embedding_model=_model_dir(env),
        embedding_timeout=_number(env, "MCPLOOKUP_EMBEDDING_TIMEOUT", 0.25, 0.01, 30.0),
        metrics_enabled=seed.metrics_enabled,
        metrics_port=seed.metrics_port,
        auto_discovery=seed.auto_discovery,
        third_party_text=_bool(env, "MCPLOOKUP_THIRD_PARTY_TEXT", True),
        third_party_interval_hours=_number(env, "MCPLOOKUP_THIRD_PARTY_INTERVAL_HOURS", 24.0, 0.01, 24 * 90),
        readme_base_url=_source_url(
            env, "MCPLOOKUP_README_BASE_URL", defaults.readme_base_url, mode == "production"
        ),
        readme_max_bytes=_int(env, "MCPLOOKUP_README_MAX_BYTES", 512 * 1024, 1024, 16 * 1024 * 1024),
        npm_registry_url=_source_url(
            env, "MCPLOOKUP_NPM_REGISTRY_URL", defaults.npm_registry_url, mode == "production"
        ),
        pypi_url=_source_url(env, "MCPLOOKUP_PYPI_URL", defaults.pypi_url, mode == "production"),
    )


def _source_url(env: Mapping[str, str], key: str, default: str, production: bool) -> str:
    """A base URL third-party text is read from: https in production (plain http is for tests)."""
    checked = _url(env, key, ("https", "http"))
    if checked is None:
        return default
    if "?" in checked or "#" in checked or "@" in checked:
        raise ConfigError(f"{key} must be a plain base URL such as {default}")
    if production and not checked.startswith("https://"):
        raise ConfigError(f"{key} must be an https URL when MCPLOOKUP_ENV=production")
    return checked.rstrip("/")


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("LOG_LEVEL", "").strip().upper()
    if raw in LOG_LEVEL_ALIASES:
        return LOG_LEVEL_ALIASES[raw]
    return _choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS, upper=True)


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


def _model_dir(env: Mapping[str, str]) -> str | None:
    # Not checked here: without the model (or the semantic extra) search starts lexical and says why
    # (/health, get_discovery_stats), as the docs promise; services/embedder.py names what is missing.
    raw = env.get("MCPLOOKUP_EMBEDDING_MODEL", "").strip()
    return str(Path(raw).expanduser()) if raw else None
