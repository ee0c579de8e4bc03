"""The key that signs discovery cursors: random and shared through the database unless one is configured."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from conftest import create_database, drop_database, open_service
from listing_support import import_seed

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.service import RegistryService

PAGE = {"query": "database", "limit": 2}


def stored_keys(db_url: str) -> list[bytes]:
    with psycopg.connect(db_url) as conn:
        return [bytes(r[0]) for r in conn.execute("SELECT value FROM instance_secrets ORDER BY name")]


@pytest.fixture
def other_db(pg_admin_url: str, template_db: str) -> Iterator[str]:
    name = f"mcpl_other_{os.getpid()}"
    yield create_database(pg_admin_url, name, template=template_db)
    drop_database(pg_admin_url, name)


@pytest.fixture
async def replica(db_url: str, settings: Settings) -> AsyncIterator[RegistryService]:
    """A second service on the same database, as another replica."""
    svc = await open_service(db_url, settings)
    yield svc
    await svc.repo.close()


async def first_cursor(service: RegistryService) -> str:
    cursor = (await service.discover(PAGE, transport="test")).next_cursor
    assert cursor
    return cursor


@pytest.mark.slow  # imports the seed
async def test_replicas_share_a_random_key_made_once(
    service: RegistryService, replica: RegistryService, db_url: str, settings: Settings
) -> None:
    assert settings.cursor_secret == ""
    await import_seed(service)
    cursor = await first_cursor(service)
    second = await replica.discover(PAGE | {"cursor": cursor}, transport="test")
    assert second.count == 2
    (key,) = stored_keys(db_url)
    assert len(key) == 32
    # The key no longer follows from anything public: a cursor signed with the old public-URL-derived
    # key is refused.
    body = cursor.split(".")[0]
    guessed = hashlib.sha256(f"mcplookup-cursor:{settings.public_url}".encode()).digest()
    signature = hmac.new(guessed, body.encode(), "sha256").digest()[:16]
    forged = body + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
    with pytest.raises(InvalidInput, match="cursor"):
        await replica.discover(PAGE | {"cursor": forged}, transport="test")


@pytest.mark.slow  # imports the seed
async def test_replicas_starting_together_agree(db_url: str, settings: Settings) -> None:
    replicas = [await open_service(db_url, settings) for _ in range(4)]
    try:
        await import_seed(replicas[0])
        cursors = await asyncio.gather(*(first_cursor(r) for r in replicas))
        assert len(set(cursors)) == 1
        assert len(stored_keys(db_url)) == 1
    finally:
        for r in replicas:
            await r.repo.close()


@pytest.mark.slow  # imports the seed into two databases
async def test_another_database_has_another_key(
    service: RegistryService, other_db: str, settings: Settings
) -> None:
    await import_seed(service)
    cursor = await first_cursor(service)
    elsewhere = await open_service(other_db, settings)
    try:
        await import_seed(elsewhere)
        with pytest.raises(InvalidInput, match="cursor"):
            await elsewhere.discover(PAGE | {"cursor": cursor}, transport="test")
    finally:
        await elsewhere.repo.close()


@pytest.mark.slow  # imports the seed
async def test_a_configured_secret_is_used_and_nothing_is_stored(
    db_url: str, other_db: str, settings: Settings
) -> None:
    configured = dataclasses.replace(settings, cursor_secret="a long operator-chosen secret")
    here = await open_service(db_url, configured)
    there = await open_service(other_db, configured)
    try:
        await import_seed(here)
        await import_seed(there)
        cursor = await first_cursor(here)
        assert (await there.discover(PAGE | {"cursor": cursor}, transport="test")).count == 2
        assert stored_keys(db_url) == stored_keys(other_db) == []
    finally:
        await here.repo.close()
        await there.repo.close()
