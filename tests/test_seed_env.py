"""The old deployment's variables: each is honoured under its name or refused at start with what to use
instead; MCPLOOKUP_PUBLIC_URL and ENABLE_METRICS change what the running app answers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from typing import Any

import httpx
import pytest

from mcplookup_mcp.core.seed_env import REFUSED
from mcplookup_mcp.core.settings import ConfigError, Settings, load_settings


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_variable_not_read_is_refused_naming_what_to_use(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: "anything"})
    message = str(caught.value)
    assert message.startswith(f"{name} is not read by MCPLookup: ")
    assert "MCPLOOKUP_" in message or "remove it" in message


def test_the_command_line_refuses_a_seed_variable_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp", "migrate"],
        env={"NODE_ENV": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mcplookup: configuration error: NODE_ENV is not read by MCPLookup: set MCPLOOKUP_ENV "
        "(production, staging, development or test) instead"
    )


def test_rate_limit_variables_become_the_per_minute_limit() -> None:
    assert load_settings({"RATE_LIMIT_MAX_REQUESTS": "45"}).rate_limit_per_minute == 45
    assert (
        load_settings(
            {"RATE_LIMIT_MAX_REQUESTS": "45", "RATE_LIMIT_WINDOW_MS": "60000"}
        ).rate_limit_per_minute
        == 45
    )
    with pytest.raises(ConfigError, match=r"RATE_LIMIT_WINDOW_MS=900000: .*one minute"):
        load_settings({"RATE_LIMIT_MAX_REQUESTS": "100", "RATE_LIMIT_WINDOW_MS": "900000"})
    with pytest.raises(ConfigError, match="disagree"):
        load_settings({"RATE_LIMIT_MAX_REQUESTS": "45", "MCPLOOKUP_RATE_LIMIT_PER_MINUTE": "30"})
    with pytest.raises(ConfigError, match="RATE_LIMIT_MAX_REQUESTS"):
        load_settings({"RATE_LIMIT_MAX_REQUESTS": "lots"})


def test_metrics_port_is_the_app_port_or_its_own() -> None:
    assert load_settings({"PORT": "9000", "METRICS_PORT": "9000"}).metrics_port is None
    assert load_settings({}).metrics_port is None
    assert load_settings({"METRICS_PORT": "9090"}).metrics_port == 9090
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings({"METRICS_PORT": "lots"})
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings({"METRICS_PORT": "70000"})


def test_feature_flags_are_booleans() -> None:
    assert load_settings({"FEATURE_AUTO_DISCOVERY": "true"}).auto_discovery is True
    assert load_settings({}).auto_discovery is False
    assert load_settings({"ENABLE_METRICS": "false"}).metrics_enabled is False
    with pytest.raises(ConfigError, match="FEATURE_AUTO_DISCOVERY='maybe' is not a boolean"):
        load_settings({"FEATURE_AUTO_DISCOVERY": "maybe"})


def test_public_url_must_be_a_plain_base_url() -> None:
    assert load_settings({"MCPLOOKUP_PUBLIC_URL": "https://mcplookup.example.com/"}).public_url == (
        "https://mcplookup.example.com"
    )
    with pytest.raises(ConfigError, match="MCPLOOKUP_PUBLIC_URL"):
        load_settings({"MCPLOOKUP_PUBLIC_URL": "mcplookup.example.com"})
    with pytest.raises(ConfigError, match="plain base URL"):
        load_settings({"MCPLOOKUP_PUBLIC_URL": "https://user@mcplookup.example.com"})


async def test_the_openapi_document_names_the_public_url(make_live: Any, settings: Settings) -> None:
    live = make_live(replace(settings, public_url="https://mcplookup.example.com", public_url_given=True))
    unset = make_live(settings)
    async with httpx.AsyncClient(timeout=20) as client:
        document = (await client.get(f"{live.base_url}/api/v1/openapi.json")).json()
        relative = (await client.get(f"{unset.base_url}/api/v1/openapi.json")).json()
    assert [server["url"] for server in document["servers"]] == ["https://mcplookup.example.com"]
    # Unset, the default public URL only follows PORT: a relative base is right wherever the document
    # was fetched from (a proxy in front included).
    assert [server["url"] for server in relative["servers"]] == ["/"]


async def test_enable_metrics_false_leaves_metrics_out(make_live: Any, settings: Settings) -> None:
    on = make_live(settings)
    off = make_live(replace(settings, metrics_enabled=False))
    async with httpx.AsyncClient(timeout=20) as client:
        assert (await client.get(f"{on.base_url}/metrics")).status_code == 200
        answer = await client.get(f"{off.base_url}/metrics")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_seeds_pool_redis_and_log_values_are_honoured() -> None:
    """The seed's production values of the names that mean something here."""
    settings = load_settings(
        {
            "LOG_LEVEL": "warn",
            "DATABASE_MAX_CONNECTIONS": "100",
            "REDIS_POOL_SIZE": "10",
            "REDIS_TIMEOUT_MS": "5000",
        }
    )
    assert settings.log_level == "WARNING"
    assert settings.db_pool_size == 100
    assert settings.redis_pool_size == 10
    assert settings.redis_timeout == 5.0
    assert load_settings({}).redis_pool_size is None and load_settings({}).redis_timeout == 0.25
    with pytest.raises(
        ConfigError, match="DATABASE_MAX_CONNECTIONS=100 and MCPLOOKUP_DB_POOL_SIZE=10 disagree"
    ):
        load_settings({"DATABASE_MAX_CONNECTIONS": "100", "MCPLOOKUP_DB_POOL_SIZE": "10"})
    assert (
        load_settings({"DATABASE_MAX_CONNECTIONS": "20", "MCPLOOKUP_DB_POOL_SIZE": "20"}).db_pool_size == 20
    )
    with pytest.raises(ConfigError, match="REDIS_TIMEOUT_MS='5' is out of range"):
        load_settings({"REDIS_TIMEOUT_MS": "5"})
    with pytest.raises(ConfigError, match="REDIS_POOL_SIZE='many' is not a number"):
        load_settings({"REDIS_POOL_SIZE": "many"})
    with pytest.raises(ConfigError, match="LOG_LEVEL='loud' is not one of"):
        load_settings({"LOG_LEVEL": "loud"})


def test_mock_dns_verification_is_honoured_outside_production_only() -> None:
    staging = {"MCPLOOKUP_ENV": "staging", "MOCK_DNS_VERIFICATION": "true"}
    assert load_settings(staging).mock_dns_verification is True
    assert load_settings({**staging, "MOCK_DNS_VERIFICATION": "false"}).mock_dns_verification is False
    with pytest.raises(
        ConfigError, match=r"^MOCK_DNS_VERIFICATION=true .* refused when MCPLOOKUP_ENV=production"
    ):
        load_settings({"MOCK_DNS_VERIFICATION": "true"})
    with pytest.raises(ConfigError, match="disagree"):
        load_settings({**staging, "MCPLOOKUP_MOCK_DNS_VERIFICATION": "false"})


async def test_redis_pool_size_and_timeout_reach_the_redis_client(redis_url: str) -> None:
    from mcplookup_mcp.store.redis_store import RedisStore

    store = RedisStore(redis_url, "test-seed-env", timeout=5.0, pool_size=2)
    try:
        pool = store.client.connection_pool
        assert pool.max_connections == 2
        assert pool.connection_kwargs["socket_timeout"] == 5.0
        # Four calls at once over two connections: each waits its turn, none fails.
        answers = await asyncio.gather(*(store.run("cache", lambda r: r.ping()) for _ in range(4)))
        assert answers == [True] * 4
    finally:
        await store.close()
