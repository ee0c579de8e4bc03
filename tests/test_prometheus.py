"""The shipped rules and dashboard on a real Prometheus (Debian's) scraping two real `mcplookup serve`
processes, one with Redis and one without, after real verification failures (claims checked against a
real DNS server on loopback that has no record for them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import REQUIRE_SERVICES, create_database, drop_database, free_port
from dnsserver import ThreadedDnsServer
from monitoring_support import MONITORING, metric_names, panel_exprs
from stack import Replica, replica_env

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus")
FAILED_VERIFICATIONS = 3


def query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def rules(base: str) -> dict[str, dict[str, Any]]:
    groups = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return {rule["name"]: rule for group in groups for rule in group["rules"]}


def eventually(check: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: last seen {last!r}")


@pytest.fixture
def replicas(
    pg_admin_url: str, template_db: str, redis_url: str, dns: ThreadedDnsServer
) -> Iterator[dict[str, Replica]]:
    name = f"mcpl_prom_{os.getpid()}"
    url = create_database(pg_admin_url, name, template=template_db)
    common = {
        # Verification asks the tests' DNS server, which has no record for the claims: real failures.
        "MCPLOOKUP_MOCK_DNS_VERIFICATION": "false",
        "MCPLOOKUP_DNS_NAMESERVERS": ",".join(f"{host}:{port}" for host, port in dns.nameservers),
        "MCPLOOKUP_DNS_TIMEOUT": "2",
        "MCPLOOKUP_RATE_LIMIT_PER_MINUTE": "1000",
    }
    started = {
        "plain": Replica(free_port(), replica_env(url, None, **common)).start(),
        "redis": Replica(
            free_port(), replica_env(url, redis_url, MCPLOOKUP_REDIS_PREFIX=f"prom{os.getpid()}", **common)
        ).start(),
    }
    try:
        for replica in started.values():
            replica.wait_ready()
        yield started
    finally:
        for replica in started.values():
            replica.stop()
        drop_database(pg_admin_url, name)


@pytest.fixture
def prometheus(replicas: dict[str, Replica], tmp_path: Path) -> Iterator[str]:
    if PROMETHEUS is None:
        if REQUIRE_SERVICES:
            pytest.fail("MCPLOOKUP_REQUIRE_SERVICES=1 and prometheus is not installed (Debian: prometheus)")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    # The shipped config, with this machine's targets and a scrape and evaluation every second; the
    # shipped rule file as it is.
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(MONITORING / "alerts.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{r.port}" for r in replicas.values()]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _answers(base), "prometheus did not start", 30)
        yield base
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        print(out.decode(errors="replace")[-3000:])


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _fail_verifications(replica: Replica, domain: str) -> None:
    listing = {
        "domain": domain,
        "slug": "mail",
        "endpoint": f"https://mcp.{domain}/mcp",
        "description": "Send, search and read email in your mailbox",
        "capabilities": ["email"],
    }
    with httpx.Client(base_url=replica.base_url, timeout=20) as http:
        claim = http.post("/api/v1/register", json=listing)
        assert claim.status_code == 202, claim.text
        verify = {"domain": domain, "registration_id": claim.json()["registration_id"]}
        for _ in range(FAILED_VERIFICATIONS):
            answer = http.post("/api/v1/verify", json=verify)
            assert answer.status_code == 200 and answer.json()["status"] == "pending", answer.text
        # A discovery over each transport, so the latency panels have series.
        assert http.get("/api/v1/discover", params={"q": "mail"}).status_code == 200
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "discover_servers", "arguments": {"query": "mail"}},
        }
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
        answer = http.post("/mcp", json=call, headers=headers)
        assert answer.status_code == 200 and "result" in answer.json(), answer.text


def test_the_shipped_rules_and_dashboard_read_real_failures_on_a_real_prometheus(
    replicas: dict[str, Replica], prometheus: str
) -> None:
    targets = {f"127.0.0.1:{r.port}": name for name, r in replicas.items()}
    # Both scraped before anything happens: the increase is seen from a sample at 0.
    eventually(
        lambda: len(query(prometheus, 'verification_failures_total{job="mcplookup"}')) == 2,
        "both replicas scraped",
    )
    time.sleep(2)
    for name, replica in replicas.items():
        _fail_verifications(replica, f"{name}.example.test")

    seed = {
        r["alert"]: r for r in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    }
    failure_rate = seed["VerificationFailureRate"]["expr"]

    # The seed's expression, verbatim, on real series: one answer per replica, above its threshold.
    # The two replicas' failures reach Prometheus a scrape apart: wait for both.
    def both() -> list[dict[str, Any]] | None:
        answer = query(prometheus, failure_rate)
        return answer if {targets[s["metric"]["instance"]] for s in answer} == {"plain", "redis"} else None

    firing = eventually(both, "the seed's VerificationFailureRate did not read both replicas")
    assert {targets[s["metric"]["instance"]] for s in firing} == {"plain", "redis"}
    ratio = failure_rate.rsplit(">", 1)[0]
    assert all(float(s["value"][1]) == pytest.approx(1.0) for s in query(prometheus, ratio))
    # Evaluated by Prometheus itself: pending (its `for` is 5 minutes), the quiet ones inactive.
    state = eventually(
        lambda: rules(prometheus)["VerificationFailureRate"]["state"] == "pending" and rules(prometheus),
        "VerificationFailureRate did not go pending",
    )
    for quiet in ("RedisDown", "HealthyServersLow", "DatabaseDown", "HighDiscoveryLatency"):
        assert state[quiet]["state"] == "inactive", (quiet, state[quiet])
    assert all(rule["health"] == "ok" for rule in state.values()), [
        r for r in state.values() if r["health"] != "ok"
    ]
    # The per-reason counter, beside it.
    by_reason = query(prometheus, "sum by (reason) (increase(verification_failures_by_reason_total[1m]))")
    assert {s["metric"]["reason"] for s in by_reason if float(s["value"][1]) > 0} == {"pending"}

    # redis_up only where Redis is configured.
    redis_up = query(prometheus, "redis_up")
    assert [(targets[s["metric"]["instance"]], s["value"][1]) for s in redis_up] == [("redis", "1")]

    # Every dashboard query is valid, and every metric it reads has series in Prometheus.
    for expr in panel_exprs():
        query(prometheus, expr)
    named = set().union(*(metric_names(e) for e in panel_exprs()))
    stored = {s["metric"]["__name__"] for s in query(prometheus, '{job="mcplookup"}')}
    assert named - stored == set()
    assert json.loads((MONITORING / "grafana-dashboard.json").read_text())["panels"]
