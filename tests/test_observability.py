"""/metrics after real REST and MCP traffic, the shipped Prometheus files (promtool), and the logs."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import REQUIRE_SERVICES, LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from monitoring_support import MONITORING, metric_names, panel_exprs
from prometheus_client.parser import text_string_to_metric_families
from serve_support import as_url, stop_serve, wait_ready

from mcplookup_mcp.core.logs import REDACTED, configure_logging, redact_text
from mcplookup_mcp.core.metrics import HEALTH_PROBE_STATUSES, REVERIFICATION_OUTCOMES
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe import health
from mcplookup_mcp.probe.verification import Outcome
from mcplookup_mcp.services.ownership import RecheckSummary

SEED_GUIDE = Path("/work/shared/seed/deployment-guide.md")
SEED_ALERTS = Path(__file__).parent / "data" / "seed-alerts.yml"
LISTING = {
    "domain": "example.test",
    "slug": "mail",
    "endpoint": "https://mcp.example.test/mcp",
    "description": "Send, search and read email in your mailbox",
    "capabilities": ["email", "search"],
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def wait_for(http: httpx.AsyncClient, ready: Callable[[Samples], bool], seconds: float = 30) -> Samples:
    for _ in range(int(seconds / 0.25)):
        scraped = await scrape(http)
        if ready(scraped):
            return scraped
        await asyncio.sleep(0.25)
    shown = {k: v for k, v in scraped.items() if k[0].startswith(("scheduler", "health_probes"))}
    raise AssertionError(f"the awaited series did not appear: {shown}")


@pytest.mark.slow
async def test_a_scrape_after_rest_and_mcp_traffic_has_every_series(
    make_live: Callable[..., LiveServer], settings: Settings, redis_url: str, dns: ThreadedDnsServer
) -> None:
    app_settings = replace(
        settings,
        redis_url=redis_url,
        redis_prefix=f"test-{secrets.token_hex(4)}",
        scheduler=True,
        probe_interval_seconds=10.0,
    )
    live = make_live(app_settings)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        before = await scrape(http)
        # Nothing probed yet: no figure, not 0 (a fresh deployment is not an unhealthy one).
        assert math.isnan(value(before, "healthy_servers_percentage"))
        # Every failure reason is there at 0 before the first failure, so rate() sees the increase.
        reasons = {o.value for o in Outcome} - {Outcome.VERIFIED.value}
        for reason in reasons:
            assert ("verification_failures_by_reason_total", frozenset({("reason", reason)})) in before

        claim = (await http.post("/api/v1/register", json=LISTING)).json()
        verify = {"domain": "example.test", "registration_id": claim["registration_id"]}
        assert (await http.post("/api/v1/verify", json=verify)).json()["status"] == "pending"
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        assert (await http.post("/api/v1/verify", json=verify)).json()["verified"] is True
        for _ in range(2):
            assert (await http.get("/api/v1/discover", params={"q": "mail"})).status_code == 200
        assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 200
        async with mcp_client(live.base_url) as client:
            for _ in range(3):
                assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
            assert not (await client.call_tool("get_server", {"name": "test.example/mail"})).is_error
            assert (await client.call_tool("discover_servers", {"colour": "blue"})).is_error

        # The scheduler leads, probes the new server (unreachable: nothing answers it) and says when.
        after = await wait_for(
            http,
            lambda s: (
                value(s, "scheduler_leader") == 1
                and value(s, "health_probes_total", status="unreachable", trigger="schedule")
                > value(before, "health_probes_total", status="unreachable", trigger="schedule")
            ),
        )

    get = {"method": "GET", "status": "200"}
    assert delta(before, after, "http_requests_total", path="/api/v1/discover", **get) == 2
    assert delta(before, after, "http_request_duration_seconds_count", path="/api/v1/discover", **get) == 2
    # The route template, never the raw path.
    assert delta(before, after, "http_requests_total", path="/api/v1/servers/{name:path}", **get) == 1
    assert not [k for k in after if "test.example" in dict(k[1]).get("path", "")]
    assert delta(before, after, "http_requests_total", method="POST", path="/mcp", status="200") >= 5
    assert delta(before, after, "verification_attempts_total") == 2
    assert delta(before, after, "verification_successes_total") == 1
    assert delta(before, after, "verification_failures_total") == 1
    assert delta(before, after, "verification_failures_by_reason_total", reason="pending") == 1
    assert value(after, "total_registered_servers") == 1
    # Probed and unreachable: the share is now a figure, 0.
    assert value(after, "healthy_servers_percentage") == 0

    ok = {"tool": "discover_servers", "outcome": "ok"}
    assert delta(before, after, "mcp_tool_calls_total", **ok) == 3
    assert delta(before, after, "mcp_tool_calls_total", tool="get_server", outcome="ok") == 1
    assert (
        delta(before, after, "mcp_tool_calls_total", tool="discover_servers", outcome="invalid_arguments")
        == 1
    )
    # MCP discovery's own latency series, which the shipped alert selects by tool.
    assert delta(before, after, "mcp_tool_call_duration_seconds_count", **ok) == 3
    assert delta(before, after, "mcp_tool_call_duration_seconds_bucket", le="+Inf", **ok) == 3
    cache = sum(
        delta(before, after, "discover_cache_total", result=r) for r in ("hit", "miss", "stale", "joined")
    )
    assert cache == 5
    assert value(after, "db_up") == 1 and value(after, "redis_up") == 1
    assert ("db_pool_connections_in_use", frozenset({("pool", "primary")})) in after
    assert ("db_pool_requests_waiting", frozenset({("pool", "primary")})) in after
    assert value(after, "scheduler_last_round_timestamp_seconds") > 1.7e9
    assert ("discovery_events_dropped_total", frozenset({("reason", "buffer_full")})) in after


async def test_without_enable_metrics_there_is_no_metrics_route(
    make_live: Callable[..., LiveServer], settings: Settings
) -> None:
    live = make_live(replace(settings, metrics_enabled=False))
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/health")).status_code == 200


def fresh_exposition() -> str:
    """/metrics of a process that never verified, probed or answered anything."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from mcplookup_mcp.core.metrics import exposition; print(exposition().decode())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    ).stdout


def test_a_fresh_process_exports_every_failure_reason_at_zero() -> None:
    """In a process that never verified anything (the case rate() used to miss)."""
    out = fresh_exposition()
    assert "verification_failures_total 0.0" in out
    for reason in {o.value for o in Outcome} - {Outcome.VERIFIED.value}:
        assert f'verification_failures_by_reason_total{{reason="{reason}"}} 0.0' in out
    assert "healthy_servers_percentage NaN" in out


def test_a_fresh_process_exports_every_labelled_series_the_rules_and_dashboard_read_at_zero() -> None:
    """rate() and increase() see the first event only from a series that existed before it."""
    out = fresh_exposition()
    statuses = typing.get_args(health.Status)
    outcomes = [f.name for f in dataclasses.fields(RecheckSummary) if f.name != "checked"]
    assert statuses == HEALTH_PROBE_STATUSES and tuple(outcomes) == REVERIFICATION_OUTCOMES
    expected = [
        *(
            f'health_probes_total{{status="{s}",trigger="{t}"}} 0.0'
            for s in statuses
            for t in ("schedule", "realtime")
        ),
        *(f'mcp_fast_path_total{{result="{r}"}} 0.0' for r in ("served", "declined")),
        *(f'reverification_checks_total{{outcome="{o}"}} 0.0' for o in outcomes),
    ]
    assert [line for line in expected if line not in out.splitlines()] == []
    # Every counter the rules and the dashboard name has a series from the start, but those labelled by
    # the request itself (method, route and status; tool and outcome), born with their first request.
    sampled = {s.name for family in text_string_to_metric_families(out) for s in family.samples}
    counters = {n for e in shipped_exprs() for n in metric_names(e) if n.endswith("_total")}
    assert counters - sampled == {"http_requests_total", "mcp_tool_calls_total"}
    # No Redis configured: no redis_up at all (a deployment without Redis is not one whose Redis is down).
    assert "redis_up" not in out


# promtool ------------------------------------------------------------------------------------------


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        if REQUIRE_SERVICES:
            pytest.fail("MCPLOOKUP_REQUIRE_SERVICES=1 and promtool is not installed (Debian: prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run([binary, *args], cwd=MONITORING, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_accepts_the_config_and_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    out = promtool("check", "rules", "alerts.yml")
    assert "SUCCESS: 15 rules found" in out


def test_promtool_unit_tests_fire_and_stay_quiet() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")
    # Every alert is tested both ways: firing somewhere and quiet somewhere.
    tests = (MONITORING / "alerts_test.yml").read_text()
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    quiet = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))
    alerts = set(re.findall(r"- alert: (\w+)", (MONITORING / "alerts.yml").read_text()))
    assert alerts == fired == quiet
    # The seed's three are among them, and the wider latency rule beside them.
    assert {
        "HighDiscoveryLatency",
        "VerificationFailureRate",
        "HealthyServersLow",
        "DiscoveryLatencyHigh",
    } <= alerts


def seed_rules() -> list[dict[str, object]]:
    """The alert rules of the seed's deployment guide, as the guide writes them (copied verbatim into
    tests/data/seed-alerts.yml, checked against the guide where it is at hand)."""
    (group,) = yaml.safe_load(SEED_ALERTS.read_text())["groups"]
    return list(group["rules"])


def test_the_seed_rules_ship_as_the_seed_wrote_them() -> None:
    shipped = {
        rule["alert"]: rule
        for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    seed = seed_rules()
    assert [r["alert"] for r in seed] == [
        "HighDiscoveryLatency",
        "VerificationFailureRate",
        "HealthyServersLow",
    ]
    for rule in seed:
        assert shipped[str(rule["alert"])] == rule
    if SEED_GUIDE.exists():
        assert f"```yaml\n{SEED_ALERTS.read_text()}```" in SEED_GUIDE.read_text()


def exported_names(text: str) -> set[str]:
    names = {"up"}  # Prometheus's own series for every scrape target
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.name)
    return names


def rule_exprs() -> list[str]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [str(rule["expr"]) for group in groups for rule in group["rules"]]


def shipped_exprs() -> list[str]:
    return rule_exprs() + panel_exprs()


async def test_every_metric_in_the_rules_and_dashboard_is_exported(http: httpx.AsyncClient) -> None:
    exported = exported_names((await http.get("/metrics")).text)
    rule_exprs_, panel_exprs_ = rule_exprs(), panel_exprs()
    assert len(rule_exprs_) == 15 and len(panel_exprs_) >= 20
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    used = set().union(*(metric_names(e) for e in rule_exprs_ + panel_exprs_))
    assert {"http_request_duration_seconds_bucket", "mcp_tool_calls_total", "scheduler_leader"} <= used
    # redis_up is exported only by a process that has REDIS_URL (this app has none; an app with Redis in the
    # same test process may have created it): its presence is asserted by the scrape test above, its
    # absence without Redis by the fresh-process test.
    assert used - exported <= {"redis_up"}
    # The dashboard shows the seed's panels plus latency, errors, MCP calls and the cache.
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for word in ("discovery latency", "verification", "healthy", "registered", "error", "mcp tool", "cache"):
        assert word in titles


# logs ----------------------------------------------------------------------------------------------


def test_redaction_covers_keys_tokens_ids_and_url_passwords() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    try:
        import structlog

        structlog.get_logger("t").info(
            "connecting postgresql://app:s3cretpw@db:5432/mcp",
            api_key="mcpl_" + "a" * 43,
            registration_id="mcpreg_abcdef",
            detail={"token": "deadbeef" * 4, "note": "Authorization: Bearer mcpl_" + "b" * 43},
        )
    finally:
        configure_logging("INFO")
    line = json.loads(out.getvalue())
    text = out.getvalue()
    assert "s3cretpw" not in text and "mcpl_aaaa" not in text and "mcpreg_abcdef" not in text
    assert "deadbeef" not in text and "mcpl_bbbb" not in text
    assert line["api_key"] == REDACTED and line["registration_id"] == REDACTED
    assert line["event"] == f"connecting postgresql://app:{REDACTED}@db:5432/mcp"
    assert redact_text("/x?api_key=abc&q=mail") == f"/x?api_key={REDACTED}&q=mail"


@pytest.mark.slow
async def test_logs_of_register_verify_rotate_hold_no_secret(
    live: LiveServer, http: httpx.AsyncClient, dns: ThreadedDnsServer
) -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    secrets_seen: list[str] = []
    try:
        claim = (
            await http.post("/api/v1/register", json=LISTING, headers={"X-Request-ID": "req-123"})
        ).json()
        secrets_seen += [claim["registration_id"], claim["dns_record"]["value"].split("=", 1)[1]]
        dns.set_txt(claim["dns_record"]["name"], claim["dns_record"]["value"])
        verified = (
            await http.post(
                "/api/v1/verify", json={"domain": "example.test", "registration_id": claim["registration_id"]}
            )
        ).json()
        key = verified["api_key"]
        secrets_seen.append(key)
        rotated = await http.post(
            "/api/v1/domains/example.test/keys/rotate", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert rotated.status_code == 200, rotated.text
        secrets_seen.append(rotated.json()["api_key"])
        # A key sent where it does not belong (a query string) and a refused old key.
        await http.get("/api/v1/discover", params={"q": "mail", "api_key": rotated.json()["api_key"]})
        refused = await http.post(
            "/api/v1/domains/example.test/keys/rotate", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code in (401, 403)
        async with mcp_client(live.base_url, api_key=rotated.json()["api_key"]) as client:
            assert not (await client.call_tool("discover_servers", {"query": "mail"})).is_error
        generated = await http.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    finally:
        configure_logging("INFO")
    text = out.getvalue()
    for secret in secrets_seen:
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "request"]
    # One access line per request, bound to its id, with the route template, status and duration.
    register = next(line for line in requests if line["path"] == "/api/v1/register")
    assert register["request_id"] == "req-123" and register["status"] == 202 and register["duration_ms"] > 0
    assert {"/api/v1/verify", "/api/v1/domains/{domain}/keys/rotate", "/mcp"} <= {r["path"] for r in requests}
    mcp = [r for r in requests if r.get("tool") == "discover_servers"]
    assert mcp and mcp[0]["outcome"] == "ok" and mcp[0]["path"] == "/mcp"
    # A usable id is echoed; an unusable one is replaced by a generated one.
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert re.fullmatch(r"[0-9a-f]{16}", generated.headers["x-request-id"])


def test_console_logs_outside_production_are_readable_text() -> None:
    out = io.StringIO()
    configure_logging("INFO", json_lines=False, stream=out)
    try:
        import structlog

        structlog.get_logger("t").info("request", path="/api/v1/discover", api_key="mcpl_" + "c" * 43)
    finally:
        configure_logging("INFO")
    text = out.getvalue()
    assert not text.startswith("{") and "request" in text and "path=/api/v1/discover" in text
    assert "mcpl_cccc" not in text


@pytest.mark.slow
def test_workers_metrics_sum_every_process(db_url: str, tmp_path: Path) -> None:
    """`serve --workers 2`: any worker's /metrics reports both workers' requests, their pools, and exactly
    one scheduler leader between them."""
    from conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")} | {
        "DATABASE_URL": as_url(db_url),
        "PORT": str(port),
        "MCPLOOKUP_ENV": "test",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        asked = 0
        for _ in range(40):
            with httpx.Client(base_url=base, timeout=20) as fresh:  # new connections reach both workers
                assert fresh.get("/api/v1/discover", params={"q": "mail"}).status_code == 200
            asked += 1
        deadline = time.monotonic() + 40
        while True:
            scraped = samples(httpx.get(f"{base}/metrics", timeout=20).text)
            if value(scraped, "scheduler_leader") == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        stop_serve(proc)
    get = {"method": "GET", "status": "200"}
    assert value(scraped, "http_requests_total", path="/api/v1/discover", **get) == asked
    assert value(scraped, "scheduler_leader") == 1
    assert ("db_pool_connections_in_use", frozenset({("pool", "primary")})) in scraped
    assert value(scraped, "db_up") == 1
