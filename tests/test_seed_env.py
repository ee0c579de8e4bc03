"""The old deployment's variables: each is honoured under its name or refused at start with what to use
instead; MCPLOOKUP_PUBLIC_URL and ENABLE_METRICS change what the running app answers."""

from __future__ import annotations

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
