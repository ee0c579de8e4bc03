"""mcplookup sync against fake upstream registries on loopback: paging, updated_since, new versions,
status changes and deletions; 429, 5xx, garbage, stalls and huge pages; resuming; and the rule that a
name held here by a DNS-verified registration is never overwritten."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from fake_registry import FakeRegistry, FakeRegistryServer
from listing_support import ROOT, add, rows
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict
from registry_schema import registry_client

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.services.scheduler import Scheduler
from mcplookup_mcp.services.service import RegistryService, utcnow
from mcplookup_mcp.services.upstream_sync import UpstreamReport, UpstreamSync, build_sync

OFFICIAL = "io.modelcontextprotocol.registry/official"


@pytest.fixture
def upstream() -> Iterator[FakeRegistryServer]:
    with FakeRegistryServer(FakeRegistry()) as server:
        yield server


def make_sync(service: RegistryService, settings: Settings, base_url: str, **changes: Any) -> UpstreamSync:
    values: dict[str, Any] = {"sync_page_size": 3, "sync_timeout": 2.0, "sync_max_seconds": 30.0} | changes
    tuned = replace(settings, upstream_registries=(base_url,), **values)
    return build_sync(service.repo, tuned, make_resolver([], 1.0), utcnow)


async def run(sync: UpstreamSync) -> UpstreamReport:
    try:
        (report,) = await sync.run()
    finally:
        await sync.client.aclose()
    return report


def state(db_url: str) -> tuple[Any, ...]:
    (row,) = rows(db_url, "SELECT watermark, cursor, failures, last_error FROM upstream_sync_state")
    return row


def versions(db_url: str) -> list[tuple[Any, ...]]:
    return rows(db_url, "SELECT server_name, version, status, is_latest FROM server_versions ORDER BY 1, 2")


def applied_count(base_url: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("sync_entries_total", {"upstream": base_url, "outcome": outcome}) or 0.0


async def test_pages_versions_status_changes_and_deletions_are_followed(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    fake = upstream.registry
    for i in range(7):
        fake.publish(f"io.github.up/tool-{i}", "1.0.0", f"tool number {i}")
    before = applied_count(upstream.base_url, "applied")
    first = await run(make_sync(service, settings, upstream.base_url))
    assert (first.finished, first.pages, first.created, first.refused) == (True, 3, 7, [])
    assert applied_count(upstream.base_url, "applied") - before == 7
    assert [r.get("updated_since") for r in fake.requests] == [None, None, None]
    watermark, cursor, failures, error = state(db_url)
    assert cursor is None and failures == 0 and error is None
    assert watermark == max(v.updated_at for v in fake.versions.values())

    fake.publish("io.github.up/tool-1", "1.1.0", "tool one, newer")
    fake.set_status("io.github.up/tool-2", "1.0.0", "deprecated")
    fake.set_status("io.github.up/tool-3", "1.0.0", "deleted")
    fake.requests.clear()
    second = await run(make_sync(service, settings, upstream.base_url))
    assert second.finished and second.refused == []
    assert fake.requests[0]["updated_since"].startswith(watermark.strftime("%Y-%m-%dT%H:%M:%S"))
    # tool-1's old version (no longer latest), its new one, tool-2 and tool-3: nothing else is read.
    assert second.created + second.updated + second.unchanged == 4
    got = {(n, v): (s, latest) for n, v, s, latest in versions(db_url)}
    assert got[("io.github.up/tool-1", "1.0.0")] == ("active", False)
    assert got[("io.github.up/tool-1", "1.1.0")] == ("active", True)
    assert got[("io.github.up/tool-2", "1.0.0")] == ("deprecated", True)
    assert got[("io.github.up/tool-3", "1.0.0")] == ("deleted", True)
    picked = "SELECT name, status, description FROM mcp_servers WHERE name IN ('io.github.up/tool-1', 'io.github.up/tool-3') ORDER BY 1"
    assert rows(db_url, picked) == [
        ("io.github.up/tool-1", "active", "tool one, newer"),
        ("io.github.up/tool-3", "deleted", "tool number 3"),
    ]
    listed = await service.discover({"query": "tool number 3"}, transport="test")
    assert "io.github.up/tool-3" not in [s.name for s in listed.servers]

    # Nothing new upstream: one page, nothing applied, the watermark where it was.
    fake.requests.clear()
    watermark = state(db_url)[0]
    third = await run(make_sync(service, settings, upstream.base_url))
    assert (third.finished, third.pages, third.applied, len(fake.requests)) == (True, 1, 0, 1)
    assert state(db_url)[0] == watermark
    assert len(versions(db_url)) == 8  # nothing duplicated


async def test_what_sync_stored_is_served_on_v01_in_the_official_shape(
    service: RegistryService, settings: Settings, live: Any, upstream: FakeRegistryServer
) -> None:
    fake = upstream.registry
    fake.strict = False
    fake.publish("io.github.up/long", "2.0.0", "x" * 20 + " words " * 40)
    fake.publish("io.github.up/gone", "1.0.0", "soon deleted")
    report = await run(make_sync(service, settings, upstream.base_url))
    assert report.fixed == [("io.github.up/long", ["description-shortened"])]
    # A first pass (no updated_since) sees no deleted entries, as the official registry answers it;
    # a deletion after it reaches the next pass.
    fake.set_status("io.github.up/gone", "1.0.0", "deleted")
    assert (await run(make_sync(service, settings, upstream.base_url))).updated == 1
    async with registry_client(live.base_url) as http:
        body = (await http.get("/v0.1/servers", params={"include_deleted": "true"})).json()
    served = {i["server"]["name"]: i for i in body["servers"]}
    assert served["io.github.up/gone"]["_meta"][OFFICIAL]["status"] == "deleted"
    assert len(served["io.github.up/long"]["server"]["description"]) <= 100


async def test_names_held_here_are_never_overwritten(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    add(
        db_url,
        "com.example/mail",
        description="Our own mail server",
        source="register",
        verified=True,
        domain="example.com",
    )
    fake = upstream.registry
    fake.publish("com.example/mail", "9.9.9", "an impostor")
    fake.publish("com.example/other", "1.0.0", "a new name in a verified namespace")
    fake.publish("com.example.mcp/deep", "1.0.0", "a subdomain's namespace")
    fake.publish("io.github.someone/tool", "1.0.0", "unrelated")
    report = await run(make_sync(service, settings, upstream.base_url))
    assert report.finished and report.created == 1
    assert sorted(report.refused) == [
        ("com.example.mcp/deep", "the name is in the namespace of example.com, a domain verified here"),
        ("com.example/mail", "the name belongs to a DNS-verified registration"),
        ("com.example/other", "the name is in the namespace of example.com, a domain verified here"),
    ]
    assert rows(db_url, "SELECT name, description, source FROM mcp_servers ORDER BY name") == [
        ("com.example/mail", "Our own mail server", "register"),
        ("io.github.someone/tool", "unrelated", "import"),
    ]
    assert [v[0] for v in versions(db_url)] == ["io.github.someone/tool"]


async def test_429_and_5xx_are_retried_after_the_wait_they_ask_for(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    fake = upstream.registry
    for i in range(5):
        fake.publish(f"io.github.up/r-{i}", "1.0.0")
    fake.faults += ["429", "500", "ok", "429"]
    waits: list[float] = []
    sync = make_sync(service, settings, upstream.base_url)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sync.sleep = sleep
    report = await run(sync)
    assert report.finished and report.created == 5
    assert len(fake.requests) == 2 + 2 + 1  # two pages, each after its faults
    assert waits[0] == 1.0 and waits[2] == 1.0  # Retry-After: 1
    assert 0.5 <= waits[1] <= 3.0  # backoff after the 500
    assert len(versions(db_url)) == 5 and state(db_url)[2] == 0


@pytest.mark.parametrize(
    "fault", ["garbage", "not-a-list", "huge", "huge-chunked", "stall", "drip", "redirect"]
)
async def test_a_bad_page_stops_the_run_and_the_next_run_resumes_from_the_stored_cursor(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer, fault: str
) -> None:
    fake = upstream.registry
    fake.stall_seconds = 3.0
    for i in range(8):
        fake.publish(f"io.github.up/b-{i}", "1.0.0")
    # The first page answers; then the fault, as often as the client would retry it.
    fake.faults += ["ok"] + [fault] * 4
    failures_before = (
        REGISTRY.get_sample_value(
            "sync_failures_total", {"upstream": upstream.base_url, "reason": _kind(fault)}
        )
        or 0.0
    )
    sync = make_sync(service, settings, upstream.base_url, sync_timeout=1.0, sync_max_page_bytes=64 * 1024)

    async def no_wait(_: float) -> None:
        return None

    sync.sleep = no_wait
    stopped = await run(sync)
    assert not stopped.finished and stopped.error is not None and stopped.error.startswith(_kind(fault))
    watermark, cursor, failures, error = state(db_url)
    assert watermark is None and cursor == fake.requests[1]["cursor"] and failures == 1 and error
    assert len(versions(db_url)) == 3  # the first page, applied and kept
    after = REGISTRY.get_sample_value(
        "sync_failures_total", {"upstream": upstream.base_url, "reason": _kind(fault)}
    )
    assert (after or 0.0) > failures_before

    fake.requests.clear()
    fake.faults.clear()
    resumed = await run(make_sync(service, settings, upstream.base_url))
    assert resumed.finished and resumed.created == 5
    assert fake.requests[0]["cursor"] == cursor
    assert len(versions(db_url)) == 8 and state(db_url)[0] is not None


def _kind(fault: str) -> str:
    return {
        "garbage": "garbage",
        "not-a-list": "garbage",
        "huge": "too_large",
        "huge-chunked": "too_large",
        "stall": "timeout",
        "drip": "timeout",
        "redirect": "redirected",
    }[fault]


async def test_a_pass_cut_by_its_time_budget_goes_on_where_it_stopped(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    fake = upstream.registry
    for i in range(10):
        fake.publish(f"io.github.up/t-{i:02d}", "1.0.0")
    runs: list[UpstreamReport] = []
    while not (runs and runs[-1].finished):
        runs.append(await run(make_sync(service, settings, upstream.base_url, sync_max_seconds=0.001)))
        if not runs[-1].finished:
            assert state(db_url)[0] is None  # the watermark waits for the pass to finish
        assert len(runs) < 10
    assert [r.pages for r in runs] == [1, 1, 1, 1]
    cursors = [r.get("cursor") for r in fake.requests]
    assert cursors[0] is None and len(set(cursors)) == 4
    assert sum(r.created for r in runs) == 10 and len(versions(db_url)) == 10
    assert state(db_url)[0] is not None


async def test_production_refuses_loopback_upstreams(
    service: RegistryService, settings: Settings, upstream: FakeRegistryServer
) -> None:
    production = replace(settings, env="production", probe_allow_cidrs=())
    report = await run(make_sync(service, production, "https://127.0.0.1"))
    assert not report.finished and report.error is not None
    assert report.error.startswith("blocked") and "loopback" in report.error
    assert upstream.registry.requests == []


async def test_two_runs_never_read_one_upstream_at_once(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    upstream.registry.publish("io.github.up/one", "1.0.0")
    async with service.repo.transaction() as q:
        now = datetime.now().astimezone()
        await q.claim_sync(upstream.base_url, now, now.replace(year=now.year + 1))
    report = await run(make_sync(service, settings, upstream.base_url))
    assert report.busy and not report.finished and upstream.registry.requests == []


async def test_the_leader_runs_sync_and_a_follower_does_not(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    for i in range(4):
        upstream.registry.publish(f"io.github.up/s-{i}", "1.0.0")
    monitor = HealthMonitor(service.repo, settings, make_resolver([], 1.0), RateLimiter(1000), clock=utcnow)
    leader = Scheduler(monitor, db_url, sync=make_sync(service, settings, upstream.base_url))
    follower = Scheduler(monitor, db_url, sync=make_sync(service, settings, upstream.base_url))
    try:
        assert await leader.try_lead() and not await follower.try_lead()
        await leader.tick()
        assert leader._sync_task is not None
        await asyncio.wait_for(leader._sync_task, 20)
        assert len(versions(db_url)) == 4 and state(db_url)[0] is not None
        requests = len(upstream.registry.requests)
        await leader.tick()  # the next run waits for MCPLOOKUP_SYNC_INTERVAL_SECONDS
        assert leader._sync_task.done() and len(upstream.registry.requests) == requests
    finally:
        await leader.stop()
        await follower.stop()
        for scheduler in (leader, follower):
            assert scheduler.sync is not None
            await scheduler.sync.client.aclose()


@pytest.mark.slow
def test_cli_sync_prints_what_it_applied_and_refused(db_url: str, upstream: FakeRegistryServer) -> None:
    upstream.registry.publish("io.github.cli/one", "1.0.0", "one")
    upstream.registry.strict = False
    upstream.registry.publish("io.github.cli/two", "1.0.0", "", remotes=[{"type": "sse", "url": "ftp://x"}])
    parts = conninfo_to_dict(db_url)
    query = urlencode({k: v for k, v in parts.items() if k in ("host", "port", "user", "password")})
    env = os.environ | {
        "DATABASE_URL": f"postgresql:///{parts['dbname']}?{query}",
        "MCPLOOKUP_ENV": "test",
        "MCPLOOKUP_UPSTREAM_REGISTRIES": upstream.base_url,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "mcplookup_mcp", "sync"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"{upstream.base_url}: finished; pages 1, created 1, updated 0, unchanged 0, refused 1"
    )
    assert "refused io.github.cli/two: the official server.json schema refuses it: remotes/0" in done.stdout
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "created 0, updated 0, unchanged 0, refused 0" in again.stdout
    off = subprocess.run(
        command,
        env=env | {"MCPLOOKUP_UPSTREAM_REGISTRIES": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert off.returncode == 2 and "MCPLOOKUP_UPSTREAM_REGISTRIES is empty" in off.stderr


async def test_a_served_app_follows_its_upstream_and_reports_the_lag(
    make_live: Any, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    for i in range(3):
        upstream.registry.publish(f"io.github.up/app-{i}", "1.0.0")
    app_settings = replace(
        settings, scheduler=True, upstream_registries=(upstream.base_url,), probe_interval_seconds=10.0
    )
    live = make_live(app_settings)
    deadline = asyncio.get_running_loop().time() + 20
    while len(versions(db_url)) < 3:
        assert asyncio.get_running_loop().time() < deadline, "the leader's sync job did not run"
        await asyncio.sleep(0.2)
    async with registry_client(live.base_url) as http:
        metrics = (await http.get("/metrics")).text
    # The gauge is process-wide: other apps of this test run may have set it for their own upstreams.
    lag = [
        line
        for line in metrics.splitlines()
        if line.startswith(f'sync_lag_seconds{{upstream="{upstream.base_url}"}}')
    ]
    assert len(lag) == 1
    assert 0 <= float(lag[0].rsplit(" ", 1)[1]) < 3600  # the pass just finished (its start: the Date header)


async def test_a_cursor_the_upstream_refuses_restarts_the_pass_at_the_watermark(
    service: RegistryService, settings: Settings, db_url: str, upstream: FakeRegistryServer
) -> None:
    fake = upstream.registry
    for i in range(5):
        fake.publish(f"io.github.up/c-{i}", "1.0.0")
    fake.faults += ["ok", "400"]
    stopped = await run(make_sync(service, settings, upstream.base_url))
    assert stopped.error is not None and stopped.error.startswith("refused: HTTP 400")
    assert state(db_url)[:2] == (None, None)  # no watermark yet, and the refused cursor forgotten
    fake.requests.clear()
    again = await run(make_sync(service, settings, upstream.base_url))
    assert again.finished and "cursor" not in fake.requests[0]
    assert (again.created, again.unchanged) == (2, 3) and len(versions(db_url)) == 5
