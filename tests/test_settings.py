"""Configuration: invalid values stop the start with a message naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcplookup_mcp.core.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"MCPLOOKUP_ENV": "prod"}, "MCPLOOKUP_ENV"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"MCPLOOKUP_REDIS_PREFIX": "has spaces"}, "MCPLOOKUP_REDIS_PREFIX"),
        ({"MCPLOOKUP_DNS_NAMESERVERS": "not-an-ip"}, "MCPLOOKUP_DNS_NAMESERVERS"),
        ({"MCPLOOKUP_DNS_TIMEOUT": "0"}, "MCPLOOKUP_DNS_TIMEOUT"),
        (
            {"MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "perhaps", "MCPLOOKUP_ENV": "test"},
            "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS",
        ),
        (
            {"MCPLOOKUP_PROBE_ALLOW_CIDRS": "300.1.1.1/8", "MCPLOOKUP_ENV": "test"},
            "MCPLOOKUP_PROBE_ALLOW_CIDRS",
        ),
        ({"MCPLOOKUP_MAX_BODY_BYTES": "100"}, "MCPLOOKUP_MAX_BODY_BYTES"),
        ({"MCPLOOKUP_MAX_BODY_BYTES": "2048.5"}, "MCPLOOKUP_MAX_BODY_BYTES"),
        ({"MCPLOOKUP_DB_POOL_TIMEOUT": "0"}, "MCPLOOKUP_DB_POOL_TIMEOUT"),
        ({"MCPLOOKUP_DB_STATEMENT_TIMEOUT": "-1"}, "MCPLOOKUP_DB_STATEMENT_TIMEOUT"),
        ({"MCPLOOKUP_UPSTREAM_REGISTRIES": "ftp://registry.example"}, "MCPLOOKUP_UPSTREAM_REGISTRIES"),
        ({"MCPLOOKUP_UPSTREAM_REGISTRIES": "https://u:p@registry.example"}, "MCPLOOKUP_UPSTREAM_REGISTRIES"),
        ({"MCPLOOKUP_SYNC_PAGE_SIZE": "500"}, "MCPLOOKUP_SYNC_PAGE_SIZE"),
        ({"MCPLOOKUP_SYNC_INTERVAL_SECONDS": "1"}, "MCPLOOKUP_SYNC_INTERVAL_SECONDS"),
        ({"MCPLOOKUP_SYNC_MAX_PAGE_BYTES": "10"}, "MCPLOOKUP_SYNC_MAX_PAGE_BYTES"),
        ({"MCPLOOKUP_SYNC_TIMEOUT": "0"}, "MCPLOOKUP_SYNC_TIMEOUT"),
        ({"MCPLOOKUP_SYNC_MAX_SECONDS": "soon"}, "MCPLOOKUP_SYNC_MAX_SECONDS"),
    ],
)
def test_invalid_value_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


@pytest.mark.parametrize("key", ["MCPLOOKUP_ALLOW_HTTP_ENDPOINTS", "MCPLOOKUP_PROBE_ALLOW_CIDRS"])
def test_development_switches_are_refused_in_production(key: str) -> None:
    value = "true" if key.endswith("ENDPOINTS") else "127.0.0.2/32"
    with pytest.raises(ConfigError, match="refused when MCPLOOKUP_ENV=production"):
        load_settings({key: value})
    outside = load_settings({key: value, "MCPLOOKUP_ENV": "test"})
    if key.endswith("ENDPOINTS"):
        assert outside.allow_http_endpoints is True
    else:
        assert [str(n) for n in outside.probe_allow_cidrs] == ["127.0.0.2/32"]


def test_defaults_are_production() -> None:
    settings = load_settings({})
    assert settings.is_production and not settings.allow_http_endpoints and settings.port == 8000
    assert load_settings({"MCPLOOKUP_DNS_NAMESERVERS": "127.0.0.1:5353"}).dns_nameservers == (
        ("127.0.0.1", 5353),
    )


def test_limits_have_defaults_and_can_be_set() -> None:
    assert load_settings({}).max_body_bytes == 65536
    assert load_settings({"MCPLOOKUP_MAX_BODY_BYTES": "1048576"}).max_body_bytes == 1048576
    defaults = load_settings({})
    assert (defaults.db_pool_timeout, defaults.db_statement_timeout) == (3.0, 30.0)
    changed = load_settings({"MCPLOOKUP_DB_POOL_TIMEOUT": "1.5", "MCPLOOKUP_DB_STATEMENT_TIMEOUT": "0"})
    assert (changed.db_pool_timeout, changed.db_statement_timeout) == (1.5, 0.0)


def test_cli_exits_with_the_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp.cli", "migrate"],
        env={"PORT": "nope", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "configuration error: PORT='nope' is not a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_upstream_registries_default_to_the_official_one_and_empty_turns_sync_off() -> None:
    assert load_settings({}).upstream_registries == ("https://registry.modelcontextprotocol.io",)
    assert load_settings({"MCPLOOKUP_UPSTREAM_REGISTRIES": ""}).upstream_registries == ()
    listed = load_settings({"MCPLOOKUP_UPSTREAM_REGISTRIES": "https://a.example/, https://b.example/reg"})
    assert listed.upstream_registries == ("https://a.example", "https://b.example/reg")
    with pytest.raises(ConfigError, match="refused when MCPLOOKUP_ENV=production"):
        load_settings({"MCPLOOKUP_UPSTREAM_REGISTRIES": "http://127.0.0.1:8080"})
    loopback = load_settings(
        {"MCPLOOKUP_UPSTREAM_REGISTRIES": "http://127.0.0.1:8080", "MCPLOOKUP_ENV": "test"}
    )
    assert loopback.upstream_registries == ("http://127.0.0.1:8080",)
