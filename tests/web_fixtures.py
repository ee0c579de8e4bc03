"""Fixtures of the web page tests (loaded with `pytest_plugins`): the seed imported once, the app over it,
and the app probing a target whose tool text is hostile."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator

import pytest
from conftest import Clock, LiveServer, create_database, drop_database
from dnsserver import ThreadedDnsServer
from health_support import HOST, probe_settings
from listing_support import SEED
from mcp_targets import TARGET_IP, UvicornThread
from web_support import hostile_target_app

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.importer import Importer, entries_of
from mcplookup_mcp.services.service import utcnow
from mcplookup_mcp.store.repository import Repository, make_pool


async def _import_seed(url: str) -> None:
    pool = make_pool(url, 2)
    await pool.open(wait=True)
    try:
        await Importer(Repository(pool), utcnow).run(entries_of(json.loads(SEED.read_text(encoding="utf-8"))))
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def seeded_db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """One database holding the imported seed, shared by the read-only page tests (imported once)."""
    name = f"mcpl_web_seed_{os.getpid()}"
    url = create_database(pg_admin_url, name, template=template_db)
    asyncio.run(_import_seed(url))
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def seeded(seeded_db_url: str, settings: Settings) -> Iterator[LiveServer]:
    """The app over the seeded database."""
    live = LiveServer(create_app(settings, seeded_db_url)).start()
    yield live
    live.stop()


@pytest.fixture
def target() -> Iterator[UvicornThread]:
    with UvicornThread(hostile_target_app()) as server:
        yield server


@pytest.fixture
def probing_app(
    make_live: Callable[..., LiveServer],
    settings: Settings,
    dns: ThreadedDnsServer,
    clock: Clock,
    target: UvicornThread,
) -> LiveServer:
    dns.set_a(HOST, TARGET_IP)
    return make_live(probe_settings(settings, target.port), clock=clock)
