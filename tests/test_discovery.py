"""Discovery on real data and on hand-made rows: intent ranking, blending, filters, sorts, cursor pages."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from conftest import BOTH_MCP_PATHS, LiveServer, create_database, drop_database, mcp_client
from listing_support import add, import_seed, search_quality, sql
from psycopg.types.json import Jsonb
from registration_support import error_text, structured

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.services.discovery import _matched, _matched_words, _words
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.store.repository import Repository, make_pool
from mcplookup_mcp.store.sqlfiles import migrations


async def names(service: RegistryService, **data: Any) -> list[str]:
    result = await service.discover(data, transport="test")
    return [s.name for s in result.servers]


@pytest.mark.slow  # imports the seed and asks every question of the quality set
async def test_intent_finds_the_server_in_the_top_five(service: RegistryService) -> None:
    """Every question a seed server fits finds one in its top five; none that no server fits is answered
    with confidence."""
    await import_seed(service)
    misses = {}
    for query, expected in search_quality.CASES:
        result = await service.discover({"query": query, "limit": 5}, transport="test")
        found = [s.name for s in result.servers]
        if expected and not set(found) & set(expected):
            misses[query] = found
        if not expected and not result.no_confident_match:
            misses[query] = [s.name for s in result.servers if s.match.strength != "weak"]
    assert not misses


@pytest.mark.slow  # imports the seed
async def test_results_say_which_stored_fields_matched(service: RegistryService) -> None:
    await import_seed(service)
    for misspelt in ("kubernets", "kubernetis", "kuberntes"):
        result = await service.discover({"query": misspelt, "limit": 3}, transport="test")
        top = result.servers[0]
        assert "kubernetes" in top.name, misspelt
        assert {"kubernet", "kubernetes"} & set(top.match.matched["name"]), (misspelt, top.match.matched)
    result = await service.discover({"query": "I need to manage my google calendar events"}, transport="test")
    matched = result.servers[0].match.matched
    assert "calendar" in matched["name"] and "mcp" not in json.dumps(matched)
    # The namespace words every imported name shares are not in the stored document, so they match
    # nothing, even in the names that hold them.
    result = await service.discover({"query": "github issues", "limit": 10}, transport="test")
    assert sum(server.name.startswith("io.github.") for server in result.servers) >= 5
    for server in result.servers:
        if "github" not in (server.title or "").lower():
            assert "github" not in server.match.matched.get("name", []), (server.name, server.match.matched)


@pytest.mark.slow  # imports the seed
async def test_a_word_beginning_a_stored_word_matches_it(service: RegistryService) -> None:
    await import_seed(service)
    result = await service.discover({"query": "kube", "limit": 3}, transport="test")
    top = result.servers
    assert top and all("kubernetes" in s.name or "kube" in s.description.lower() for s in top), top
    assert {s.match.terms["kube"] for s in top} == {"completed"} and not result.no_confident_match
    # Most of a word completes it wherever it stands; the last word, still being typed, completes
    # from four letters.
    both = await names(service, query="kubernete clust", limit=5)
    assert any("kubernetes" in name for name in both), both
    assert any("multicluster" in name for name in both), both
    # Three letters are too few to stand for longer words.
    assert await names(service, query="kub") == []


@pytest.mark.slow  # imports the seed
async def test_a_shared_first_syllable_is_no_match(service: RegistryService) -> None:
    """Two different words that begin alike never match each other, as a prefix or as a misspelling."""
    await import_seed(service)
    for query, other in (
        ("control the lights at home", "lightdash"),  # "lights" no prefix of lightdash
        ("postgres", "postman"),  # six letters of stem, three edits away: no correction
        ("Paris", "paradex"),  # four letters: too short to correct
        ("I need an MCP server", "needl"),
    ):
        result = await service.discover({"query": query, "limit": 10}, transport="test")
        for server in result.servers:
            assert server.match.strength == "weak" or other not in json.dumps(server.match.matched), (
                query,
                server.name,
                server.match,
            )
    assert (await service.discover({"query": "postgres", "limit": 10}, transport="test")).servers == []
    # "home" is a word servers hold: it completes nothing (homeassistant holds it only as a synonym).
    result = await service.discover({"query": "home", "limit": 10}, transport="test")
    assert result.servers and {s.match.terms["home"] for s in result.servers} <= {"name", "text"}


async def test_relevant_unverified_beats_irrelevant_verified(service: RegistryService, db_url: str) -> None:
    add(db_url, "io.github.someone/cal", description="Manage Google Calendar events and invitations")
    add(
        db_url,
        "com.example/notes",
        description="Take notes; sync events to other apps",
        source="register",
        verified=True,
        domain="example.com",
        health_status="healthy",
        trust_score=100,
    )
    assert (await names(service, query="manage my google calendar events"))[0] == "io.github.someone/cal"


async def test_at_equal_relevance_verified_and_healthy_wins(service: RegistryService, db_url: str) -> None:
    text = "Send and search email in your mailbox"
    add(db_url, "io.github.aaa/mail", description=text)
    add(db_url, "io.github.bbb/mail", description=text, health_status="unreachable")
    add(
        db_url,
        "com.zzz/mail",
        description=text,
        source="register",
        verified=True,
        domain="zzz.com",
        health_status="healthy",
        trust_score=90,
    )
    assert await names(service, query="send an email") == [
        "com.zzz/mail",
        "io.github.aaa/mail",
        "io.github.bbb/mail",
    ]


def _filter_rows(db_url: str) -> None:
    add(
        db_url,
        "com.acme/mail",
        description="email",
        source="register",
        verified=True,
        domain="acme.com",
        capabilities=["email", "search"],
        category="communication",
        auth_type="oauth2",
        transport="streamable-http",
        remotes=[{"type": "streamable-http", "url": "https://mcp.acme.com/mcp"}],
        health_status="healthy",
        trust_score=80,
        avg_response_time_ms=40.0,
        created_at=datetime(2026, 1, 3, tzinfo=UTC),
    )
    add(
        db_url,
        "com.acme.eu/mail",
        description="email",
        source="register",
        verified=True,
        domain="eu.acme.com",
        capabilities=["email"],
        category="communication",
        transport="sse",
        remotes=[{"type": "sse", "url": "https://eu.acme.com/sse"}],
        health_status="degraded",
        trust_score=60,
        avg_response_time_ms=15.0,
        created_at=datetime(2026, 1, 4, tzinfo=UTC),
    )
    add(
        db_url,
        "com.notacme/mail",
        description="email",
        source="register",
        verified=True,
        domain="notacme.com",
        capabilities=["calendar"],
        category="productivity",
        auth_type="api_key",
        health_status="unhealthy",
        trust_score=30,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    add(
        db_url,
        "io.github.x/mail",
        description="email",
        capabilities=["email", "calendar"],
        transport="stdio",
        packages=[{"registryType": "npm", "identifier": "x-mail", "transport": {"type": "stdio"}}],
        trust_score=10,
        avg_response_time_ms=5.0,
    )
    add(
        db_url,
        "org.pending/mail",
        description="email",
        status="pending",
        domain="pending.org",
        trust_score=99,
    )


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"domain": "acme.com"}, ["com.acme.eu/mail", "com.acme/mail"]),
    ({"domain": "eu.acme.com"}, ["com.acme.eu/mail"]),
    ({"capabilities": ["email"]}, ["com.acme.eu/mail", "com.acme/mail", "io.github.x/mail"]),
    ({"capabilities": ["email", "calendar"]}, ["io.github.x/mail"]),
    (
        {"capabilities": ["search", "calendar"], "capability_match": "any"},
        ["com.acme/mail", "com.notacme/mail", "io.github.x/mail"],
    ),
    ({"exclude_capabilities": ["calendar"]}, ["com.acme.eu/mail", "com.acme/mail"]),
    ({"category": "communication"}, ["com.acme.eu/mail", "com.acme/mail"]),
    ({"transport": "stdio"}, ["io.github.x/mail"]),
    ({"transport": "sse"}, ["com.acme.eu/mail"]),
    ({"transport": "streamable-http"}, ["com.acme/mail"]),
    ({"auth_type": "api_key"}, ["com.notacme/mail"]),
    ({"verified_only": True}, ["com.acme.eu/mail", "com.acme/mail", "com.notacme/mail"]),
    ({"healthy_only": True}, ["com.acme/mail"]),
    ({"min_trust_score": 60}, ["com.acme.eu/mail", "com.acme/mail"]),
    (
        {"include_pending": True},
        ["com.acme.eu/mail", "com.acme/mail", "com.notacme/mail", "io.github.x/mail", "org.pending/mail"],
    ),
    ({}, ["com.acme.eu/mail", "com.acme/mail", "com.notacme/mail", "io.github.x/mail"]),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS)
@pytest.mark.parametrize("query", ["", "email"])
async def test_filters_are_exact(
    service: RegistryService, db_url: str, query: str, filters: dict[str, Any], expected: list[str]
) -> None:
    _filter_rows(db_url)
    assert sorted(await names(service, query=query, sort="name", **filters)) == expected
    assert await names(service, query=query, sort="name", **filters) == expected


SORTS = [
    ("trust", ["com.acme/mail", "com.acme.eu/mail", "com.notacme/mail", "io.github.x/mail"]),
    ("latency", ["io.github.x/mail", "com.acme.eu/mail", "com.acme/mail", "com.notacme/mail"]),
    ("newest", ["com.acme.eu/mail", "com.acme/mail", "com.notacme/mail", "io.github.x/mail"]),
    ("name", ["com.acme.eu/mail", "com.acme/mail", "com.notacme/mail", "io.github.x/mail"]),
]


@pytest.mark.parametrize(("sort", "expected"), SORTS)
@pytest.mark.parametrize("query", ["", "email"])
async def test_sorts_are_exact(
    service: RegistryService, db_url: str, query: str, sort: str, expected: list[str]
) -> None:
    _filter_rows(db_url)
    assert await names(service, query=query, sort=sort) == expected


async def pages(service: RegistryService, data: dict[str, Any], between: Any = None) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(200):
        result = await service.discover(data | {"cursor": cursor} if cursor else data, transport="test")
        seen += [s.name for s in result.servers]
        if between:
            between()
        cursor = result.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.slow  # imports the seed and walks every page, for each sort
@pytest.mark.parametrize("sort", ["relevance", "trust", "latency", "newest", "name"])
@pytest.mark.parametrize("query", ["", "data database server"])
async def test_cursor_pages_return_every_row_once(
    service: RegistryService, db_url: str, sort: str, query: str
) -> None:
    await import_seed(service)
    # Spread the sort keys, with ties, so pages cut through equal values.
    sql(
        db_url,
        "UPDATE mcp_servers SET trust_score = abs(hashtext(name)) %% 5 * 20,"
        " avg_response_time_ms = CASE WHEN abs(hashtext(name)) %% 3 = 0 THEN NULL"
        " ELSE abs(hashtext(name)) %% 4 * 10 END,"
        " created_at = timestamptz '2026-01-01' + (abs(hashtext(name)) %% 7) * interval '1 day'",
    )
    data = {"query": query, "sort": sort, "limit": 7}
    everything = await names(service, query=query, sort=sort, limit=100) if query else None
    inserted = iter(range(1000))

    def churn() -> None:
        # Inserts and health flaps between pages must not repeat or skip the rows already ordered.
        n = next(inserted)
        add(
            db_url,
            f"zz.new/s{n}",
            description="unrelated newcomer",
            created_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        sql(db_url, "UPDATE mcp_servers SET health_status = %s WHERE name LIKE 'io.github.a%%'", f"h{n % 2}")

    seen = await pages(service, data, between=churn if sort not in ("relevance",) else None)
    assert len(seen) == len(set(seen)), "a row came twice"
    listed = [n for n in seen if not n.startswith("zz.new/")]
    if query:
        assert everything is not None and set(everything) <= set(listed)
    else:
        with psycopg.connect(db_url) as conn:
            total = conn.execute(
                "SELECT count(*) FROM mcp_servers WHERE name NOT LIKE 'zz.new/%%'"
            ).fetchone()
        assert total is not None and len(listed) == total[0]


@pytest.mark.slow  # imports the seed and walks every page
async def test_relevance_pages_match_one_long_page(service: RegistryService) -> None:
    await import_seed(service)
    one = await names(service, query="search the web for news", limit=100)
    assert await pages(service, {"query": "search the web for news", "limit": 9}) == one


@pytest.mark.slow  # imports the seed
@BOTH_MCP_PATHS
async def test_tampered_or_foreign_cursor_is_refused(service: RegistryService, live: LiveServer) -> None:
    await import_seed(service)
    first = await service.discover({"query": "database", "limit": 2}, transport="test")
    cursor = first.next_cursor
    assert cursor
    body, signature = cursor.split(".")
    forged = body[:-2] + ("AA" if not body.endswith("AA") else "BB") + "." + signature
    for bad, data in [
        (forged, {"query": "database"}),
        (cursor, {"query": "database", "sort": "name"}),
        (cursor, {"query": "email"}),
        ("not-a-cursor", {}),
        ("x" * 2000, {}),
    ]:
        with pytest.raises(InvalidInput, match="cursor"):
            await service.discover(data | {"cursor": bad, "limit": 2}, transport="test")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.get("/api/v1/discover", params={"q": "database", "cursor": forged})
        assert response.status_code == 422 and response.json()["field"] == "cursor"
        ok = await http.get("/api/v1/discover", params={"q": "database", "limit": 2, "cursor": cursor})
        assert ok.status_code == 200 and ok.json()["count"] == 2
    async with mcp_client(live.base_url) as client:
        text = error_text(await client.call_tool("discover_servers", {"query": "database", "cursor": forged}))
        assert "cursor" in text


HOSTILE = [
    "calendar & !",
    "calendar' | '",
    "calendar:*",
    "(calendar",
    "calendar \\",
    "calendar %_",
    "!calendar",
]


@pytest.mark.slow  # imports the seed
async def test_operators_in_query_text_do_not_change_its_meaning(service: RegistryService) -> None:
    await import_seed(service)
    plain = await names(service, query="calendar")
    for text in HOSTILE:
        assert await names(service, query=text) == plain, text


async def test_bad_filter_values_are_refused(service: RegistryService) -> None:
    for data, field in [
        ({"sort": "random"}, "sort"),
        ({"transport": "pigeon"}, "transport"),
        ({"min_trust_score": 101}, "min_trust_score"),
        ({"min_trust_score": "high"}, "min_trust_score"),
        ({"capability_match": "some"}, "capability_match"),
        ({"auth_type": "magic"}, "auth_type"),
        ({"verified_only": "perhaps"}, "verified_only"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            await service.discover(data, transport="test")
        assert caught.value.field == field


async def test_capabilities_and_stats_over_mcp_and_rest(live: LiveServer, db_url: str) -> None:
    _filter_rows(db_url)
    sql(db_url, "INSERT INTO discovery_events (transport, result_count, duration_ms) VALUES ('rest', 1, 4.0)")
    async with mcp_client(live.base_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("browse_capabilities", "get_discovery_stats"):
            assert tools[name].annotations.read_only_hint is True and tools[name].output_schema
        caps = structured(await client.call_tool("browse_capabilities", {}))
        stats = structured(await client.call_tool("get_discovery_stats", {}))
    assert caps["capabilities"][0] == {"value": "email", "servers": 3}
    assert {"value": "communication", "servers": 2} in caps["categories"]
    assert stats["listed_servers"] == 4 and stats["verified_servers"] == 3 and stats["imported_servers"] == 1
    assert stats["pending_claims"] == 1 and stats["healthy_servers"] == 1
    assert stats["transports"] == {"sse": 1, "stdio": 1, "streamable-http": 1}
    assert stats["servers_without_transport"] == 1
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        assert (await http.get("/api/v1/capabilities")).json() == caps
        rest_stats = (await http.get("/api/v1/stats")).json()
        assert rest_stats["listed_servers"] == 4 and rest_stats["servers_without_transport"] == 1
        response = await http.get(
            "/api/v1/discover", params={"q": "email", "transport": "stdio", "sort": "name"}
        )
        assert [s["name"] for s in response.json()["servers"]] == ["io.github.x/mail"]


async def test_newest_sort_pages_cut_through_equal_timestamps(service: RegistryService, db_url: str) -> None:
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    for i in range(25):
        add(db_url, f"io.github.t/s{i:02d}", created_at=moment + timedelta(seconds=i // 4))
    seen = await pages(service, {"sort": "newest", "limit": 3})
    assert sorted(seen) == [f"io.github.t/s{i:02d}" for i in range(25)]


def postings(db_url: str, name: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.lexeme, p.strength FROM search_postings p JOIN mcp_servers s ON s.id = p.server_id"
            " WHERE s.name = %s",
            (name,),
        ).fetchall()
    return dict(rows)


def orphan_postings(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM search_postings p WHERE NOT EXISTS (SELECT 1 FROM mcp_servers s"
            " WHERE s.id = p.server_id AND s.status = 'active' AND (s.verified OR s.source = 'import'))"
        ).fetchone()
    return int(row[0]) if row else -1


async def test_postings_follow_every_listing_change(service: RegistryService, db_url: str) -> None:
    add(db_url, "io.example/mailer", title="Mailer", description="Sends newsletters", domain="mail.example")
    held = postings(db_url, "io.example/mailer")
    assert held["mailer"] == 3 and held["newslett"] == 1, held  # title beats description
    # The prober's writes leave them alone; a new description replaces them.
    sql(db_url, "UPDATE mcp_servers SET health_status = 'healthy', trust_score = 70")
    assert postings(db_url, "io.example/mailer") == held
    sql(db_url, "UPDATE mcp_servers SET description = 'Reads invoices'")
    held = postings(db_url, "io.example/mailer")
    assert "invoic" in held and "newslett" not in held, held
    assert await names(service, query="invoices") == ["io.example/mailer"]
    # Not listed, no postings; listed again, back; deleted with its domain, gone.
    sql(db_url, "UPDATE mcp_servers SET status = 'deleted'")
    assert postings(db_url, "io.example/mailer") == {}
    assert await names(service, query="invoices") == []
    sql(db_url, "UPDATE mcp_servers SET status = 'active'")
    assert "invoic" in postings(db_url, "io.example/mailer")
    add(db_url, "io.example/pending", description="Reads invoices too", status="pending", domain="p.example")
    assert postings(db_url, "io.example/pending") == {}
    assert await names(service, query="invoices", include_pending=True) == [
        "io.example/mailer",
        "io.example/pending",
    ]
    sql(db_url, "DELETE FROM domains WHERE domain = 'mail.example'")
    assert orphan_postings(db_url) == 0
    assert await names(service, query="invoices") == []


HELPER = "io.github.acme/helper"


def _add_helper(db_url: str) -> None:
    """A server whose own words (name, description) share nothing with its packages, repository or tools."""
    add(
        db_url,
        HELPER,
        description="Helps with everyday chores",
        packages=[
            {"registryType": "npm", "identifier": "@acme/frobnicator-cli", "transport": {"type": "stdio"}},
            {
                "registryType": "oci",
                "identifier": "ghcr.io/acme/quuxify:nightly",
                "transport": {"type": "stdio"},
            },
        ],
        repository=Jsonb({"url": "https://github.com/acme/zanzibar-toolkit.git", "source": "github"}),
        # As the prober stores what tools/list answered (update_server_tools).
        tools=Jsonb([{"name": "getTidalCharts", "description": "Tide tables for a harbour"}]),
    )


async def test_a_server_is_found_by_what_is_known_of_it(service: RegistryService, db_url: str) -> None:
    """Its package identifiers, its repository's name and the tools the prober saw find a server, not only
    its owner's own words; a registry host, an image tag and the namespace words find nothing."""
    _add_helper(db_url)
    add(db_url, "io.github.other/mailer", description="Sends email")
    for query, field in (
        ("frobnicator", "packages"),  # an npm identifier
        ("quuxify", "packages"),  # an OCI image
        ("zanzibar toolkit", "packages"),  # the repository's name
        ("tidal charts", "tools"),  # a probed tool's name, camelCase
        ("getTidalCharts", "tools"),  # the name whole
        ("harbour", "tools"),  # its description
    ):
        result = await service.discover({"query": query}, transport="test")
        assert [s.name for s in result.servers] == [HELPER], query
        match = result.servers[0].match
        assert not result.no_confident_match and match.strength in ("exact", "partial"), (query, match)
        assert match.matched_words[field] == sorted(query.lower().split()), (query, match)
    for query in ("ghcr", "nightly", "github"):
        assert await names(service, query=query) == [], query
    # Never probed (no tools): a package's word is still said to be the package's.
    add(db_url, "io.github.solo/thing", packages=[{"registryType": "pypi", "identifier": "plinkerton"}])
    found = (await service.discover({"query": "plinkerton"}, transport="test")).servers
    assert [s.name for s in found] == ["io.github.solo/thing"]
    assert found[0].match.matched_words == {"packages": ["plinkerton"]}, found[0].match
    # A word of a package counts for less than the same word in a server's own name.
    add(db_url, "io.github.someone/frobnicator", description="Frobnicates")
    assert await names(service, query="frobnicator") == ["io.github.someone/frobnicator", HELPER]
    # A changed package list re-indexes the row.
    sql(
        db_url,
        "UPDATE mcp_servers SET packages = %s WHERE name = %s",
        Jsonb([{"registryType": "pypi", "identifier": "wibble-wobble"}]),
        HELPER,
    )
    assert await names(service, query="wibble") == [HELPER]
    assert await names(service, query="quuxify") == []
    # A name's words joined, as people type a project's name.
    add(db_url, "io.github.acme/google-calendar", description="Events")
    assert await names(service, query="googlecalendar") == ["io.github.acme/google-calendar"]


def test_the_migration_indexes_servers_stored_before_it(pg_admin_url: str) -> None:
    url = create_database(pg_admin_url, f"mcpl_reindex_{os.getpid()}")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for version, text in migrations():
                if version.startswith("0014_"):
                    break
                conn.execute(text.encode())
        _add_helper(url)
        assert "frobnic" not in postings(url, HELPER)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(dict(migrations())["0014_search_document_fields"].encode())
        held = postings(url, HELPER)
        # 0: the same strength as tool descriptions; tool names are strength 2, as before.
        assert held["frobnic"] == held["zanzibar"] == held["harbour"] == 0 and held["tidal"] == 2, held
    finally:
        drop_database(pg_admin_url, f"mcpl_reindex_{os.getpid()}")


@pytest.mark.slow  # imports the seed
async def test_a_question_of_filler_alone_still_finds_what_holds_it(service: RegistryService) -> None:
    # Filler never decides a match unless it is all there is; then its holders are the candidates,
    # strongest first (nearly every server holds "mcp" and "server").
    await import_seed(service)
    for query in ("mcp server", "I need an MCP server"):
        result = await service.discover({"query": query, "limit": 10}, transport="test")
        assert result.count == 10, query
        for server in result.servers:
            held = {word for words in server.match.matched.values() for word in words}
            assert held & {"mcp", "server"}, (query, server.name, server.match.matched)


@pytest.mark.slow  # writes 301 servers, a connection each
async def test_unfiltered_pool_gives_every_term_a_share(service: RegistryService, db_url: str) -> None:
    # 300 servers hold "forecast", more than the whole candidate pool, and were stored first; the one
    # server holding the other word must still be ranked (it is, by its title, the better match).
    for i in range(300):
        add(db_url, f"io.example/weather-{i:03}", description="Weather forecasts")
    add(db_url, "io.example/tides", title="Tides", description="Tide tables for harbours")
    found = await names(service, query="forecast tides", limit=3)
    assert found[0] == "io.example/tides", found


@pytest.mark.slow  # imports the seed, then asks each question twice
async def test_a_kept_plan_answers_as_a_fresh_one(service: RegistryService) -> None:
    await import_seed(service)
    discovery = service.discovery
    await service.discover({"query": "todo"}, transport="test")  # reads the cursor key
    compared = 0
    for query, _ in search_quality.CASES[:12]:
        for extra in ({}, {"sort": "trust", "limit": 3}):
            plan = discovery.plan({"query": query} | extra)
            assert plan.reuse_plan
            kept = await discovery._search(plan)
            fresh = await discovery._search(dataclasses.replace(plan, reuse_plan=False))
            assert kept.model_dump() == fresh.model_dump(), (query, extra)
            compared += kept.count > 0
    assert compared >= 20
    # Any filter plans for its values.
    assert not discovery.plan({"query": "todo", "verified_only": True}).reuse_plan
    assert not discovery.plan({"query": "todo", "include_pending": True}).reuse_plan


async def test_a_connection_plans_for_its_values_again_after_a_kept_plan_search(db_url: str) -> None:
    # One connection, so every use below gets the one the previous use left.
    pool = make_pool(db_url, 1)
    await pool.open(wait=True)
    repo = Repository(pool)

    async def plan_mode(kept_plans: bool = False, transaction: bool = False) -> str:
        opened = repo.transaction() if transaction else repo.read(kept_plans=kept_plans)
        async with opened as q:
            cur = await q.conn.execute("SHOW plan_cache_mode")
            row = await cur.fetchone()
            assert row is not None
            return str(row["plan_cache_mode"])

    try:
        assert await plan_mode() == "force_custom_plan"
        assert await plan_mode(kept_plans=True) == "force_generic_plan"
        assert await plan_mode(kept_plans=True) == "force_generic_plan"
        assert await plan_mode() == "force_custom_plan"
        assert await plan_mode(kept_plans=True) == "force_generic_plan"
        assert await plan_mode(transaction=True) == "force_custom_plan"
    finally:
        await pool.close()


def test_matched_lists_each_lexeme_under_every_field_its_weights_name() -> None:
    row = {
        "matched_lexemes": ["AAC:calendar", "B:email", "B:echo", "D:localhost:8080", "D:frobnic"],
        "matched_capabilities": ["email"],
        "matched_packages": ["frobnic"],
        "matched_name_words": [["kubernetes", "kubernets"]],
        "lexeme_words": [
            ["calendar", "calendar", "calendars"],
            ["email", "email", "e-mail"],
            ["email", "mail", "mail"],
            ["echo", "echo", "echo"],
            ["localhost:8080", "localhost:8080", "localhost:8080"],
            ["frobnic", "frob", "frob"],
        ],
        "term_evidence": ["5:calendar", "6:email", "2:mail", "6:echo", "0:missing", "4:frob"],
    }
    assert _matched(row) == {
        "name": ["calendar", "kubernetes"],
        "capabilities": ["email"],
        "description": ["calendar"],
        "tools": ["echo", "localhost:8080"],
        "packages": ["frobnic"],
    }
    # The same, in the query's own words: a lexeme standing for two terms shows both words.
    assert _matched_words(row) == {
        "name": ["calendars", "kubernets"],
        "capabilities": ["e-mail", "mail"],
        "description": ["calendars"],
        "tools": ["echo", "localhost:8080"],
        "packages": ["frob"],
    }
    assert _words(row) == {
        "calendars": "text",
        "e-mail": "name",
        "mail": "related",
        "echo": "name",
        "missing": "missing",
        "frob": "completed",
    }
    empty = {"matched_lexemes": None, "matched_capabilities": None, "matched_name_words": None}
    assert _matched(empty) == _matched_words(empty) == _words(empty) == {}


@pytest.mark.slow  # imports the seed, then asks over MCP
@BOTH_MCP_PATHS
async def test_strength_and_abstention_reach_the_agent(service: RegistryService, live: LiveServer) -> None:
    """Through the real MCP client and over REST: each result says how strongly it matched and why, the
    answer says when nothing matched well, and the tool description tells the agent how to read both."""
    await import_seed(service)
    async with mcp_client(live.base_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        description = tools["discover_servers"].description or ""
        assert (
            "no_confident_match" in description and "weak" in description and "match.strength" in description
        )
        schema = json.dumps(tools["discover_servers"].output_schema)
        assert "no_confident_match" in schema and "strength" in schema and "total" in schema
        found = structured(await client.call_tool("discover_servers", {"query": "kubernetes", "limit": 3}))
        unsure = structured(await client.call_tool("discover_servers", {"query": "order food delivery"}))
    top = found["servers"][0]
    assert found["no_confident_match"] is False and top["match"]["strength"] == "exact"
    assert top["match"]["terms"] == {"kubernet": "name"} and "kubernetes" in top["name"]
    # The same evidence in the words the question typed, for whoever shows it to a person.
    assert top["match"]["words"] == {"kubernetes": "name"}
    assert (
        top["match"]["matched_words"]["name"] == ["kubernetes"]
        and "kubernet" in top["match"]["matched"]["name"]
    )
    assert "matched_words" in schema
    assert found["count"] == 3 and found["total"] > 3 and found["next_cursor"]
    assert unsure["no_confident_match"] is True
    assert unsure["servers"] and {s["match"]["strength"] for s in unsure["servers"]} == {"weak"}
    assert all("missing" in s["match"]["terms"].values() for s in unsure["servers"])
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        rest = (await http.get("/api/v1/discover", params={"q": "order food delivery"})).json()
        nothing = (await http.get("/api/v1/discover", params={"q": "postgres"})).json()
        shop = (await http.get("/api/v1/discover", params={"q": "Databases for my SHOP"})).json()
    typed = {w for s in shop["servers"] for words in s["match"]["matched_words"].values() for w in words}
    assert typed == {"databases", "shop"}, typed
    assert {w for s in shop["servers"] for w in s["match"]["words"]} == {"databases", "shop"}
    assert rest["no_confident_match"] is True and [s["name"] for s in rest["servers"]] == [
        s["name"] for s in unsure["servers"]
    ]
    assert nothing == nothing | {"servers": [], "count": 0, "total": 0, "no_confident_match": True}


@pytest.mark.slow  # imports the seed and walks every page
async def test_total_counts_every_page(service: RegistryService, db_url: str) -> None:
    """total is the number of servers the question returns across its pages: for a query, exactly what
    paging yields; for a listing, counted up to 1000."""
    await import_seed(service)
    first = await service.discover({"query": "search the web for news", "limit": 7}, transport="test")
    assert first.total == len(await pages(service, {"query": "search the web for news", "limit": 7}))
    listing = await service.discover({"limit": 5}, transport="test")
    stats = await service.discovery.stats()
    assert listing.total == stats.listed_servers and not listing.total_is_lower_bound
    assert listing.no_confident_match is None and listing.servers[0].match.strength is None
    verified = await service.discover({"verified_only": True}, transport="test")
    assert verified.total == stats.verified_servers == 0 and verified.servers == []
    sql(
        db_url,
        "INSERT INTO mcp_servers (name, description, source, status, verified, auth_type)"
        " SELECT 'io.github.bulk/s' || i, '', 'import', 'active', false, 'none' FROM generate_series(1, 1001) AS i",
    )
    many = await service.discover({"limit": 1}, transport="test")
    assert many.total == 1000 and many.total_is_lower_bound
