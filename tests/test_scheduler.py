"""The scheduler: one leader across replicas, due work claimed once, the loop run by the app's lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import psycopg
import pytest
from conftest import Clock, LiveServer
from dnsserver import ThreadedDnsServer
from health_support import HOST, add_server, fetch, probe_settings
from mcp_targets import TARGET_IP, Recorder, UvicornThread, sdk_streamable_app

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.services.scheduler import Scheduler
from mcplookup_mcp.store.repository import Repository, make_pool


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[UvicornThread, Recorder]]:
    recorder = Recorder(sdk_streamable_app(stateless=True))
    with UvicornThread(recorder) as server:
        yield server, recorder


@pytest.fixture
async def replicas(
    db_url: str,
    settings: Settings,
    dns: ThreadedDnsServer,
    clock: Clock,
    target: tuple[UvicornThread, Recorder],
) -> AsyncIterator[Callable[[], Scheduler]]:
    """Schedulers as separate replicas would run them: each with its own pool and leader connection."""
    dns.set_a(HOST, TARGET_IP)
    # Concurrency 1 makes batches of 4, so the two replicas' claims interleave.
    app_settings = probe_settings(settings, target[0].port, probe_concurrency=1)
    made: list[Scheduler] = []

    async def make() -> Scheduler:
        pool = make_pool(db_url, 3)
        await pool.open(wait=True)
        resolver = make_resolver(list(app_settings.dns_nameservers), app_settings.dns_timeout)
        monitor = HealthMonitor(Repository(pool), app_settings, resolver, RateLimiter(1000), clock=clock)
        scheduler = Scheduler(monitor, db_url)
        made.append(scheduler)
        return scheduler

    yield make  # type: ignore[misc]
    for scheduler in made:
        await scheduler.stop()
        await scheduler.monitor.repo.pool.close()


async def test_two_replicas_probe_each_due_server_exactly_once(
    replicas: Callable[[], object], db_url: str, clock: Clock, target: tuple[UvicornThread, Recorder]
) -> None:
    server, recorder = target
    names = [f"test.example/s{i}" for i in range(10)]
    for name in names:
        add_server(db_url, name, server.url())
    first, second = await replicas(), await replicas()  # type: ignore[misc]
    recorder.requests.clear()

    counts = await asyncio.gather(first.tick(), second.tick())
    assert sum(counts) == len(names) and all(counts)  # both replicas took a share
    per_server = fetch(db_url, "SELECT server_id, count(*) FROM health_checks GROUP BY server_id")
    assert len(per_server) == len(names) and {n for _, n in per_server} == {1}
    assert recorder.requests and sum(1 for r in recorder.requests if r[0] == "POST") >= len(names)

    # Nothing is due until the interval has passed.
    assert await asyncio.gather(first.tick(), second.tick()) == [0, 0]
    clock.advance(seconds=first.monitor.settings.probe_interval_seconds * 1.2)
    counts = await asyncio.gather(first.tick(), second.tick())
    assert sum(counts) == len(names)
    per_server = fetch(db_url, "SELECT server_id, count(*) FROM health_checks GROUP BY server_id")
    assert {n for _, n in per_server} == {2}


async def test_a_new_leader_takes_over_when_the_leaders_connection_closes(
    replicas: Callable[[], object], db_url: str
) -> None:
    first, second = await replicas(), await replicas()  # type: ignore[misc]
    assert await first.try_lead() is True
    assert await second.try_lead() is False
    assert await first.try_lead() is True  # leadership holds while the session lives

    # The leader's session ends as it would when its process dies or the network drops it.
    pid = await first.backend_pid()
    with psycopg.connect(db_url, autocommit=True) as admin:
        # With a timeout the call waits until the backend has exited, and so released its locks; without
        # one it only signals, and the next line could still find the lock held.
        row = admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
        assert row == (True,)
    assert await first.try_lead() is False
    assert await second.try_lead() is True
    assert await first.try_lead() is False

    # A clean stop releases the lock at once.
    await second.stop()
    assert await first.try_lead() is True


async def test_the_app_runs_the_scheduler_in_its_lifespan(
    make_live: Callable[..., LiveServer],
    settings: Settings,
    dns: ThreadedDnsServer,
    db_url: str,
    target: tuple[UvicornThread, Recorder],
) -> None:
    server, _ = target
    dns.set_a(HOST, TARGET_IP)
    add_server(db_url, "test.example/mail", server.url())
    live = make_live(replace(probe_settings(settings, server.port), scheduler=True))
    deadline = time.monotonic() + 15
    while not fetch(db_url, "SELECT status FROM health_checks"):
        assert time.monotonic() < deadline, "the scheduler did not probe the due server"
        await asyncio.sleep(0.1)
    assert fetch(db_url, "SELECT status, trigger FROM health_checks") == [("healthy", "schedule")]
    live.stop()
    # Shutdown closed the leader connection (its backend may take a moment to leave pg_stat_activity).
    deadline = time.monotonic() + 5
    while fetch(
        db_url,
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'mcplookup-scheduler'"
        " AND datname = current_database()",
    ):
        assert time.monotonic() < deadline, "the leader connection outlived the app"
        await asyncio.sleep(0.05)
