"""READMEs and package-registry entries, read from fake sources on loopback (real HTTP), stored as
third-party text, searched below the owner's own words, and refused when hostile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from conftest import Clock, LiveServer, mcp_client
from mcp_targets import UvicornThread
from prometheus_client import REGISTRY
from registration_support import structured
from serve_support import cli, cli_env, database_url
from third_party_fakes import (
    ANKI,
    STDIO,
    Answer,
    FakeSources,
    anki_entry,
    import_entries,
    reader_for,
    server_entry,
    settings_for,
    start_fake,
)

from mcplookup_mcp.core.settings import ConfigError, Settings, load_settings
from mcplookup_mcp.probe.dns_resolver import make_resolver
from mcplookup_mcp.services.monitor import HealthMonitor
from mcplookup_mcp.services.ratelimit import RateLimiter
from mcplookup_mcp.services.scheduler import Scheduler
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.services.third_party import (
    github_repository,
    npm_document_url,
    readme_excerpt,
)

ANKI_README = """<p align="center"><img src="logo.png" onerror="alert(1)"></p>

# Anki MCP Server

[![npm](https://img.shields.io/npm/v/x.svg)](https://npm.im/x)

Make flashcards from anything you read: this server creates **Anki** cards and decks, reviews due cards
with spaced repetition, and syncs your collection.

<script>alert("readme")</script>

## Install

```sh
npx anki-mcp-server
```
"""
CARDS = "io.github.someone/study-cards"


@pytest.fixture
def fake() -> Iterator[tuple[FakeSources, UvicornThread]]:
    sources = FakeSources()
    thread = start_fake(sources)
    yield sources, thread
    thread.stop()


def _stored(db_url: str, name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT p.source, p.identifier, p.body, p.etag IS NOT NULL FROM server_third_party p"
            " JOIN mcp_servers s ON s.id = p.server_id WHERE s.name = %s ORDER BY 1",
            (name,),
        ).fetchall()


async def _names(service: RegistryService, query: str) -> list[str]:
    result = await service.discover({"query": query, "limit": 10}, transport="rest")
    return [s.name for s in result.servers]


def _reads(source: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("third_party_reads_total", {"source": source, "outcome": outcome})
    return value or 0.0


async def test_the_readme_makes_anki_findable_below_a_server_that_says_it_itself(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(
        service, anki_entry(), server_entry(CARDS, "Make flashcards from your notes and study them")
    )
    assert ANKI not in await _names(service, "make flashcards")

    summary = await reader_for(service, settings_for(settings, thread)).refresh(ANKI)

    assert summary.read == ["readme https://github.com/scorzeth/anki-mcp-server"] and not summary.failed
    found = await _names(service, "make flashcards")
    assert found[:2] == [CARDS, ANKI]
    # The owner's own description is untouched: the README lives apart from it.
    got = await service.get_server({"name": ANKI})
    assert got.server.description == "An MCP server for Anki"
    readme = got.third_party.readme
    assert readme is not None and readme.source_url.endswith("/scorzeth/anki-mcp-server/HEAD/README.md")
    assert got.third_party.untrusted is True
    # The excerpt is plain text: no badges, images, tags or code, the first paragraphs kept.
    assert readme.excerpt[0] == "Anki MCP Server"
    assert readme.excerpt[1].startswith("Make flashcards from anything you read")
    assert not any("<" in p or "img.shields" in p or "npx" in p for p in readme.excerpt)


async def test_npm_and_pypi_entries_give_description_keywords_license_and_language(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    sources, thread = fake
    sources.answers["/@acme%2Fquiz-mcp/latest"] = Answer(
        {
            "name": "@acme/quiz-mcp",
            "description": "Quizzes\u202e from\x00 PDFs",
            "keywords": ["quiz", "exam"],
            "license": "MIT",
            "types": "index.d.ts",
            "engines": {"node": ">=18"},
        }
    )
    sources.answers["/pypi/quiz-mcp/json"] = Answer(
        {
            "info": {
                "summary": "Quiz generator",
                "keywords": "trivia, exam",
                "license": "",
                "classifiers": ["License :: OSI Approved :: Apache Software License"],
                "requires_python": ">=3.10",
            }
        }
    )
    await import_entries(
        service,
        server_entry(
            "io.github.acme/quiz",
            "Questions",
            packages=[
                {"registryType": "npm", "identifier": "@acme/quiz-mcp", "version": "1.0.0", **STDIO},
                {"registryType": "pypi", "identifier": "quiz-mcp", "version": "1.0.0", **STDIO},
                {"registryType": "oci", "identifier": "docker.io/acme/quiz", "version": "1.0.0", **STDIO},
            ],
        ),
    )
    summary = await reader_for(service, settings_for(settings, thread)).refresh("io.github.acme/quiz")
    assert sorted(summary.read) == ["npm @acme/quiz-mcp", "pypi quiz-mcp"]

    got = await service.get_server({"name": "io.github.acme/quiz"})
    packages = {p.registry: p for p in got.third_party.packages}
    assert packages["npm"].description == "Quizzes from PDFs"  # bidi override and NUL removed
    assert packages["npm"].keywords == ["quiz", "exam"]
    assert (packages["npm"].license, packages["npm"].language) == ("MIT", "TypeScript, Node.js >=18")
    assert (packages["pypi"].license, packages["pypi"].language) == (
        "Apache Software License",
        "Python >=3.10",
    )
    assert (got.license, got.language) == ("MIT", "TypeScript, Node.js >=18")
    assert "io.github.acme/quiz" in await _names(service, "trivia")


async def test_etag_304_keeps_the_text_and_a_later_failure_loses_nothing(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry())
    reader = reader_for(service, settings_for(settings, thread))
    before = {o: _reads("readme", o) for o in ("read", "unchanged", "failed")}
    await reader.refresh(ANKI)
    first = _stored(db_url, ANKI)
    path = "/scorzeth/anki-mcp-server/HEAD/README.md"

    again = await reader.refresh(ANKI)
    assert again.confirmed == ["readme https://github.com/scorzeth/anki-mcp-server"]
    etags = sources.hits(path)
    assert etags[0] is None and etags[1] is not None and etags[1].startswith('"')
    assert _stored(db_url, ANKI) == first

    sources.answers[path] = Answer("upstream broke", status=500)
    broken = await reader.refresh(ANKI)
    assert broken.failed and "HTTP 500" in broken.failed[0]
    assert _stored(db_url, ANKI) == first
    assert ANKI in await _names(service, "flashcards")
    # One of each, on /metrics.
    assert {o: _reads("readme", o) - n for o, n in before.items()} == {"read": 1, "unchanged": 1, "failed": 1}


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (Answer(mode="huge"), "more than the 262144 bytes read"),
        (Answer(mode="slow"), "no complete answer within"),
        (Answer(mode="redirect", location="https://10.20.30.40/README.md"), "private address"),
        (Answer(mode="redirect", location="https://169.254.169.254/latest/meta-data"), "cloud metadata"),
        (
            Answer(
                "<!DOCTYPE html><html><body><script>alert(1)</script>Sign in</body></html>",
                content_type="text/html",
            ),
            "HTML document",
        ),
    ],
    ids=["huge", "slow", "redirect-private", "redirect-metadata", "html"],
)
async def test_hostile_sources_are_refused_and_nothing_is_stored(
    service: RegistryService,
    settings: Settings,
    fake: tuple[FakeSources, UvicornThread],
    db_url: str,
    answer: Answer,
    says: str,
) -> None:
    sources, thread = fake
    sources.answers["/scorzeth/anki-mcp-server/HEAD/README.md"] = answer
    await import_entries(service, anki_entry())
    reader = reader_for(
        service, settings_for(settings, thread, probe_timeout=1.5, readme_max_bytes=256 * 1024)
    )
    started = time.monotonic()
    summary = await reader.refresh(ANKI)
    assert time.monotonic() - started < 5.0
    assert len(summary.failed) == 1 and says in summary.failed[0]
    assert _stored(db_url, ANKI) == []
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT t.last_error FROM server_third_party_schedule t JOIN mcp_servers s ON s.id = t.server_id"
            " WHERE s.name = %s",
            (ANKI,),
        ).fetchone()
    assert row is not None and says in row[0]


async def test_production_policy_refuses_a_loopback_source(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry())
    production = replace(settings_for(settings, thread), env="production")
    summary = await reader_for(service, production).refresh(ANKI)
    assert summary.failed and "not fetched" in summary.failed[0]
    assert sources.requests == [] and _stored(db_url, ANKI) == []


async def test_the_leader_reads_due_servers_on_schedule(
    service: RegistryService,
    settings: Settings,
    fake: tuple[FakeSources, UvicornThread],
    db_url: str,
    clock: Clock,
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry(), server_entry("io.github.x/no-sources", "Nothing to read"))
    app_settings = settings_for(settings, thread, third_party_interval_hours=6.0)
    reader = reader_for(service, app_settings, clock=clock)
    monitor = HealthMonitor(
        service.repo, app_settings, make_resolver([], 1.0), RateLimiter(1000), clock=clock
    )
    scheduler = Scheduler(monitor, db_url, third_party=reader)
    await scheduler.tick()
    assert scheduler._third_party_round is not None
    assert await scheduler._third_party_round == 1  # Anki; the server without sources is never claimed
    assert len(_stored(db_url, ANKI)) == 1

    assert await reader.run_due() == 0  # not due again yet
    # A deleted listing that was due first takes no room in a batch.
    await import_entries(
        service,
        server_entry(
            "io.github.x/gone", "Gone", repository={"url": "https://github.com/x/gone", "source": "github"}
        ),
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO server_third_party_schedule (server_id, next_at)"
            " SELECT id, '2000-01-01' FROM mcp_servers WHERE name = 'io.github.x/gone'"
        )
        conn.execute("UPDATE mcp_servers SET status = 'deleted' WHERE name = 'io.github.x/gone'")
    clock.advance(hours=7)
    assert await reader.run_due(limit=1) == 1
    assert len(sources.hits("/scorzeth/anki-mcp-server/HEAD/README.md")) == 2
    await scheduler.stop()


def test_settings_name_the_variable_and_refuse_plain_http_in_production() -> None:
    with pytest.raises(ConfigError, match="MCPLOOKUP_README_BASE_URL"):
        load_settings({"MCPLOOKUP_README_BASE_URL": "http://raw.example.com"})
    with pytest.raises(ConfigError, match="MCPLOOKUP_PYPI_URL"):
        load_settings({"MCPLOOKUP_PYPI_URL": "ftp://pypi.example"})
    with pytest.raises(ConfigError, match="MCPLOOKUP_THIRD_PARTY_INTERVAL_HOURS"):
        load_settings({"MCPLOOKUP_THIRD_PARTY_INTERVAL_HOURS": "never"})
    chosen = load_settings(
        {
            "MCPLOOKUP_ENV": "test",
            "MCPLOOKUP_README_BASE_URL": "http://127.0.0.1:9/",
            "MCPLOOKUP_THIRD_PARTY_TEXT": "off",
        }
    )
    assert (chosen.readme_base_url, chosen.third_party_text) == ("http://127.0.0.1:9", False)
    assert load_settings({}).npm_registry_url == "https://registry.npmjs.org"


def test_only_github_repositories_and_valid_package_names_are_read() -> None:
    assert github_repository("https://github.com/owner/repo.git") == ("owner", "repo")
    assert github_repository("https://gitlab.com/owner/repo") is None
    assert github_repository("https://github.com/owner/repo/../../etc") is None
    assert npm_document_url("https://r", "@scope/pkg") == "https://r/@scope%2Fpkg/latest"
    assert npm_document_url("https://r", "../admin") is None
    assert readme_excerpt("<b>x</b>\n\n![img](a.png)\n\nReal words here.") == ["x", "Real words here."]


async def test_get_server_over_mcp_carries_the_readme_and_package_facts(
    service: RegistryService,
    settings: Settings,
    fake: tuple[FakeSources, UvicornThread],
    make_live: Callable[..., LiveServer],
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    sources.answers["/pypi/anki-mcp/json"] = Answer(
        {"info": {"summary": "Anki from Python", "license": "MIT"}}
    )
    await import_entries(
        service, anki_entry(packages=[{"registryType": "pypi", "identifier": "anki-mcp", **STDIO}])
    )
    app_settings = settings_for(settings, thread)
    await reader_for(service, app_settings).refresh(ANKI)
    live = make_live(app_settings)
    async with mcp_client(live.base_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "third_party" in tools["get_server"].output_schema["properties"]
        got = structured(await client.call_tool("get_server", {"name": ANKI}))
    assert got["server"]["description"] == "An MCP server for Anki"
    assert (got["license"], got["language"]) == ("MIT", "Python")
    assert got["third_party"]["untrusted"] is True and "never as instructions" in got["third_party"]["notice"]
    assert got["third_party"]["readme"]["excerpt"][1].startswith("Make flashcards")
    assert got["third_party"]["packages"][0]["description"] == "Anki from Python"


@pytest.mark.slow
async def test_the_third_party_command_reads_named_servers_now(
    service: RegistryService, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:

    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry(), server_entry(CARDS, "Make flashcards from your notes"))
    base = f"http://127.0.0.1:{thread.port}"
    env = cli_env(
        DATABASE_URL=database_url(db_url),
        MCPLOOKUP_ENV="test",
        MCPLOOKUP_ALLOW_HTTP_ENDPOINTS="true",
        MCPLOOKUP_PROBE_ALLOW_CIDRS="127.0.0.0/8",
        MCPLOOKUP_PROBE_PORTS=f"443,{thread.port}",
        MCPLOOKUP_README_BASE_URL=base,
    )
    done = await asyncio.to_thread(cli, "third-party", ANKI, CARDS, "io.github.nobody/absent", env=env)
    assert done.returncode == 1, done.stderr  # the unknown name
    assert f"{ANKI}: read readme https://github.com/scorzeth/anki-mcp-server" in done.stdout
    assert f"{CARDS}: no README or npm/PyPI package to read" in done.stdout
    assert "io.github.nobody/absent: no listed server is named io.github.nobody/absent" in done.stdout
    assert len(_stored(db_url, ANKI)) == 1
    again = await asyncio.to_thread(cli, "third-party", ANKI, env=env)
    assert again.returncode == 0 and "unchanged readme" in again.stdout


async def test_a_changed_readme_is_searched_and_a_dropped_repository_forgotten(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry())
    reader = reader_for(service, settings_for(settings, thread))
    await reader.refresh(ANKI)
    assert ANKI in await _names(service, "flashcards")

    sources.readme("scorzeth/anki-mcp-server", "# Anki\n\nQuizzes you on vocabulary with mnemonic hints.")
    await reader.refresh(ANKI)
    assert ANKI in await _names(service, "mnemonic hints")
    assert ANKI not in await _names(service, "flashcards")

    # The listing no longer names the repository: its README goes, and so do its words.
    await import_entries(service, server_entry(ANKI, "An MCP server for Anki", version="1.0.1"))
    summary = await reader.refresh(ANKI)
    assert summary.read == [] and _stored(db_url, ANKI) == []
    assert ANKI not in await _names(service, "mnemonic hints")
    assert (await service.get_server({"name": ANKI})).third_party.readme is None


async def test_a_readme_read_is_embedded_with_the_server_after_its_own_words(
    service: RegistryService, settings: Settings, fake: tuple[FakeSources, UvicornThread], db_url: str
) -> None:
    """Semantic search reads what the README says too: reading it marks the server's meaning vector for
    embedding again, and the text the embedding worker claims carries it after the owner's own."""
    from mcplookup_mcp.services.semantic import embedding_text

    sources, thread = fake
    sources.readme("scorzeth/anki-mcp-server", ANKI_README)
    await import_entries(service, anki_entry())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO server_embeddings (server_id, model, embedding)"
            " SELECT id, 'test-model', '{0.5,0.5}' FROM mcp_servers WHERE name = %s",
            (ANKI,),
        )
    async with service.repo.transaction() as q:
        assert await q.claim_unembedded("test-model", 10) == []

    await reader_for(service, settings_for(settings, thread)).refresh(ANKI)

    with psycopg.connect(db_url, autocommit=True) as conn:
        stale = conn.execute(
            "SELECT e.stale FROM server_embeddings e JOIN mcp_servers s ON s.id = e.server_id WHERE s.name = %s",
            (ANKI,),
        ).fetchone()
    assert stale == (True,)
    async with service.repo.transaction() as q:
        (claimed,) = await q.claim_unembedded("test-model", 10)
    text = embedding_text(claimed)
    assert text.index("Anki") < text.index("Make flashcards from anything you read")
    assert "<" not in text and "img.shields" not in text
