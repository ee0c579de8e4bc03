"""Semantic search with the real model (all-MiniLM-L6-v2): the encoder against sentence-transformers'
published similarities, the background embedding of servers into PostgreSQL 15 (vectors scored in
process) and 18 (pgvector), the fused ranking through the service, REST and the MCP client, and the
lexical fallback when the model is missing, slow or failing."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import (
    LiveServer,
    create_database,
    drop_database,
    open_service,
    with_dbname,
)
from prometheus_client import REGISTRY
from serve_support import cli, cli_env, database_url

from mcplookup_mcp.app import create_app
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.discovery import FUSION
from mcplookup_mcp.services.embedding_worker import EmbeddingWorker
from mcplookup_mcp.services.importer import Importer, entries_of
from mcplookup_mcp.services.service import RegistryService, utcnow
from mcplookup_mcp.store.migrate import apply_migrations

SEED = Path(__file__).parent / "data" / "registry-seed-2025-05-16.json"
TERMINALS = {
    "io.github.ferrislucas/iterm-mcp",
    "io.github.rishabkoul/iterm-mcp-server",
    "io.github.gongrzhe/terminal-controller-mcp",
    "io.github.simonb97/win-cli-mcp-server",
}


def _searches(mode: str) -> float:
    return REGISTRY.get_sample_value("discover_search_mode_total", {"mode": mode}) or 0.0


async def _names(service: RegistryService, query: str, **data: Any) -> tuple[list[str], Any]:
    result = await service.discover({"query": query, **data}, transport="test")
    return [s.name for s in result.servers], result


def test_the_encoder_gives_sentence_transformers_similarities(embedding_model: str) -> None:
    """sentence-transformers' README, all-MiniLM-L6-v2: 0.6660, 0.1046 and 0.1411 for these three."""
    from mcplookup_mcp.services.embedder import Embedder

    embedder = Embedder(Path(embedding_model))
    v = embedder.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert v.shape == (3, 384)
    assert abs(float(v[0] @ v[1]) - 0.6660) < 1e-3
    assert abs(float(v[0] @ v[2]) - 0.1046) < 1e-3
    assert abs(float(v[1] @ v[2]) - 0.1411) < 1e-3
    # Padding in a batch changes nothing: a short text alone and beside a long one embed the same.
    alone = embedder.embed(["send an email"])[0]
    beside = embedder.embed(["send an email", "a much longer sentence about databases and queries " * 5])[0]
    assert float(alone @ beside) > 0.9999
    question = embedder.embed_query("send an email to my colleague")
    texts = ["Gmail: read and send mail", "Query a PostgreSQL database", "Play songs on Spotify"]
    assert int((embedder.embed(texts) @ question).argmax()) == 0


def test_without_the_model_search_is_lexical_and_says_why(settings: Settings, db_url: str) -> None:
    """A lexical-only install (no MCPLOOKUP_EMBEDDING_MODEL) starts, searches and says which mode."""
    live = LiveServer(create_app(settings, db_url, background=False)).start()
    try:
        health = httpx.get(f"{live.base_url}/health").json()
        assert health["search"]["mode"] == "lexical"
        assert "MCPLOOKUP_EMBEDDING_MODEL" in health["search"]["reason"]
        answer = httpx.get(f"{live.base_url}/api/v1/discover", params={"q": "send email"}).json()
        assert answer["search_mode"] == "lexical"
        assert "MCPLOOKUP_EMBEDDING_MODEL" in answer["lexical_reason"]
        stats = httpx.get(f"{live.base_url}/api/v1/stats").json()
        assert stats["search"]["mode"] == "lexical"
    finally:
        live.stop()


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["pg15", "pg18"])
async def test_fused_search_finds_meaning_and_refuses_word_noise(
    storage: str, request: pytest.FixtureRequest, semantic_base_settings: Settings, template_db: str
) -> None:
    url = request.getfixturevalue("seeded_pg15" if storage == "pg15" else "seeded_pg18")
    service = await open_service(url, semantic_base_settings)
    try:
        assert await service.discovery.semantic.storage() is (storage == "pg18")
        fused = _searches("fused")
        names, result = await _names(service, "run shell commands")
        assert result.search_mode == "fused" and result.lexical_reason is None
        assert _searches("fused") == fused + 1
        assert TERMINALS & set(names[:3]), names[:5]
        top = result.servers[0]
        assert top.match.similarity is not None and top.match.similarity > 0.2
        # "currencies" is one spelling edit from "current" (iterm-mcp's "the current iTerm session"):
        # the meaning does not support it, so it is no result at all.
        names, result = await _names(service, "convert currencies")
        assert "io.github.ferrislucas/iterm-mcp" not in names
        # Spotify plays music; it does not know chords. No confident match either way round.
        names, result = await _names(service, "show me the guitar chords for a song")
        assert result.no_confident_match is True
        assert all(s.match.strength == "weak" for s in result.servers)
        names, result = await _names(service, "track my menstrual cycle")
        assert result.no_confident_match is True
        # A synonym alone (tweet -> post), from a server not among the nearest by meaning, is a guess.
        names, result = await _names(service, "post a tweet")
        assert names[0] == "io.github.enescinr/twitter-mcp"
        assert {s.match.strength for s in result.servers if s.name == "io.github.openmf/mcp-mifosx"} <= {
            "weak"
        }
        # A partial match by the words other than their best one must be near by meaning too: a web
        # scraper's description holds "text", which makes it no translator.
        names, result = await _names(service, "translate text")
        assert names[0] == "io.github.translated/lara-mcp" and result.servers[0].match.strength == "partial"
        scraper = [s for s in result.servers if s.name == "io.github.cyberchitta/scrapling-fetch-mcp"]
        assert scraper and scraper[0].match.strength == "weak"
        # Words as typed keep their strength: the one calculator is a confident answer.
        names, result = await _names(service, "do math calculations")
        assert names[0] == "io.github.githejie/mcp-server-calculator"
        assert result.no_confident_match is False
        # The nearest servers by meaning pass the same filters as the words' (no seed server is healthy).
        names, result = await _names(service, "who owns a domain name", healthy_only=True)
        assert result.search_mode == "fused" and names == []
        stats = await service.discovery.stats()
        assert stats.search is not None and stats.search.mode == "fused"
        assert stats.search.vector_storage == ("pgvector" if storage == "pg18" else "in_process")
        assert stats.search.waiting_servers == 0 and stats.search.embedded_servers == stats.listed_servers
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


@pytest.mark.slow
async def test_both_stores_rank_alike(
    seeded_pg15: str, seeded_pg18: str, semantic_base_settings: Settings
) -> None:
    """pgvector's HNSW index and the in-process scoring find the same neighbours on the seed."""
    answers = {}
    for url in (seeded_pg15, seeded_pg18):
        service = await open_service(url, semantic_base_settings)
        try:
            answers[url] = [
                (await _names(service, q))[0][:3]
                for q in ("run shell commands", "who owns a domain name", "send an email from my gmail")
            ]
        finally:
            service.discovery.semantic.close()
            await service.repo.close()
    assert answers[seeded_pg15] == answers[seeded_pg18]
    assert TERMINALS & set(answers[seeded_pg15][0])
    # No word of the question is in whois-mcp's "MCP Server for whois lookups": the meaning finds it.
    assert answers[seeded_pg15][1][0] == "io.github.bharathvaj-ganesan/whois-mcp"
    assert "io.github.gongrzhe/gmail-mcp-server" in answers[seeded_pg15][2]


@pytest.mark.slow
async def test_fused_pages_are_stable_and_exact(seeded_pg15: str, semantic_base_settings: Settings) -> None:
    service = await open_service(seeded_pg15, semantic_base_settings)
    try:
        for query in ("monitor my servers and alerts", "store files in the cloud"):
            whole = [
                s.name for s in (await service.discover({"query": query, "limit": 50}, transport="t")).servers
            ]
            paged: list[str] = []
            cursor = None
            while True:
                data: dict[str, Any] = {"query": query, "limit": 4}
                if cursor:
                    data["cursor"] = cursor
                page = await service.discover(data, transport="t")
                assert page.search_mode == "fused"
                paged += [s.name for s in page.servers]
                cursor = page.next_cursor
                if not cursor:
                    break
            assert paged == whole[: len(paged)] and len(paged) == len(set(paged))
            assert len(paged) == len(whole) or len(whole) == 50
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


@pytest.mark.slow
async def test_a_slow_model_gives_a_lexical_answer_that_says_so(
    seeded_pg15: str, semantic_base_settings: Settings
) -> None:
    service = await open_service(seeded_pg15, replace(semantic_base_settings, embedding_timeout=1e-6))
    fallbacks = _searches("fallback")
    try:
        result = await service.discover({"query": "a question never embedded before 7"}, transport="t")
        assert result.search_mode == "lexical"
        assert result.lexical_reason is not None and "did not answer within" in result.lexical_reason
        # Counted as a fallback, apart from deployments with no model at all.
        assert _searches("fallback") == fallbacks + 1
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


@pytest.mark.slow
async def test_a_failing_model_gives_a_lexical_answer(
    seeded_pg15: str, semantic_base_settings: Settings
) -> None:
    service = await open_service(seeded_pg15, semantic_base_settings)
    embedder = service.discovery.semantic.embedder
    assert embedder is not None

    def broken(text: str) -> Any:
        raise RuntimeError("broken model")

    embedder.embed_query = broken  # type: ignore[method-assign]
    try:
        names, result = await _names(service, "send an email from my gmail")
        assert result.search_mode == "lexical" and "failed" in (result.lexical_reason or "")
        assert "io.github.gongrzhe/gmail-mcp-server" in names[:5]
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


@pytest.mark.slow
async def test_changes_and_a_new_model_are_embedded_again(db_url: str, semantic_settings: Settings) -> None:
    service = await open_service(db_url, semantic_settings)
    worker = EmbeddingWorker(service.discovery.semantic)
    model = service.discovery.semantic.model
    try:
        entries = entries_of(json.loads(SEED.read_text(encoding="utf-8")))[:20]
        await Importer(service.repo, utcnow).run(entries)
        with psycopg.connect(db_url, autocommit=True) as conn:
            listed = conn.execute("SELECT count(*) FROM mcp_servers WHERE status = 'active'").fetchone()
        assert listed is not None and listed[0] >= 15
        assert await worker.run_until_done() == listed[0]
        assert await worker.run_once() == 0
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute("SELECT id, name FROM mcp_servers ORDER BY name LIMIT 1").fetchone()
            assert row is not None
            server_id, name = row
            before = conn.execute(
                "SELECT embedding FROM server_embeddings WHERE server_id = %s", (server_id,)
            ).fetchone()
            # A probe's write (health) changes nothing embedded: the vector stays current.
            conn.execute("UPDATE mcp_servers SET health_status = 'healthy' WHERE id = %s", (server_id,))
            assert conn.execute(
                "SELECT stale FROM server_embeddings WHERE server_id = %s", (server_id,)
            ).fetchone() == (False,)
            conn.execute(
                "UPDATE mcp_servers SET description = 'Order pizza and track the delivery' WHERE id = %s",
                (server_id,),
            )
            assert conn.execute(
                "SELECT stale FROM server_embeddings WHERE server_id = %s", (server_id,)
            ).fetchone() == (True,)
        assert await worker.run_until_done() == 1
        names, _ = await _names(service, "order a pizza for delivery")
        assert names[0] == name
        with psycopg.connect(db_url, autocommit=True) as conn:
            after = conn.execute(
                "SELECT embedding, model, stale FROM server_embeddings WHERE server_id = %s", (server_id,)
            ).fetchone()
            assert after is not None and after[0] != before[0] and after[1] == model and after[2] is False
            # Vectors of another model are replaced in the background, every one.
            conn.execute("UPDATE server_embeddings SET model = 'an-older-model'")
        progress = await service.discovery.semantic.progress()
        assert progress is not None and progress["waiting"] == listed[0] and progress["embedded"] == 0
        assert await worker.run_until_done() == listed[0]
        # New tools seen by the prober, written the way it writes them, are embedded again too.
        async with service.repo.transaction() as q:
            await q.update_server_tools(server_id, [{"name": "transcribe_audio"}], "fp-1", None)
        assert await worker.run_until_done() == 1
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


def test_the_migration_runs_on_both_servers(embedded_pg_url: str, pg_admin_url: str) -> None:
    """pgvector's column and HNSW index where the server has the extension, the array column alone where not."""
    for admin, vector in ((embedded_pg_url, True), (pg_admin_url, None)):
        name = f"mcpl_semmig_{os.getpid()}"
        url = create_database(admin, name)
        try:
            asyncio.run(apply_migrations(url))
            with psycopg.connect(with_dbname(admin, name)) as conn:
                available = conn.execute(
                    "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
                ).fetchone()
                has_column = conn.execute(
                    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'server_embeddings'::regclass"
                    " AND attname = 'vec'"
                ).fetchone()
                index = conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'server_embeddings_vec_idx'"
                ).fetchone()
            expected = vector if vector is not None else bool(available and available[0])
            assert bool(has_column and has_column[0]) is expected
            assert (index is not None and "hnsw" in index[0]) is expected
        finally:
            drop_database(admin, name)


def test_a_missing_model_directory_starts_lexical(settings: Settings, db_url: str, tmp_path: Path) -> None:
    from mcplookup_mcp.core.settings import load_settings

    given = load_settings({"MCPLOOKUP_EMBEDDING_MODEL": str(tmp_path / "nothing-here")})
    assert given.embedding_model == str(tmp_path / "nothing-here")
    live = LiveServer(
        create_app(replace(settings, embedding_model=given.embedding_model), db_url, background=False)
    ).start()
    try:
        search = httpx.get(f"{live.base_url}/health").json()["search"]
        assert search["mode"] == "lexical" and "no config.json" in search["reason"]
    finally:
        live.stop()


@pytest.mark.slow
def test_the_command_line_embeds_then_searches_by_meaning(db_url: str, embedding_model: str) -> None:
    """`mcplookup import`, `embed`, `discover`: fused from the command line too; before `embed`, with no
    vector stored, the answer is lexical and says why."""

    entries = [
        e
        for e in json.loads(SEED.read_text(encoding="utf-8"))
        if "whois" in e["name"] or "gmail" in e["name"]
    ]
    env = cli_env(DATABASE_URL=database_url(db_url), MCPLOOKUP_EMBEDDING_MODEL=embedding_model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "servers.json"
        path.write_text(json.dumps(entries))
        assert cli("import", str(path), env=env).returncode == 0
        before = json.loads(cli("discover", "--json", "who", "owns", "a", "domain", "name", env=env).stdout)
        assert before["search_mode"] == "lexical" and "no server has a vector" in before["lexical_reason"]
        done = cli("embed", env=env)
        assert done.returncode == 0, done.stderr
        assert f"embedded {len(entries)} servers" in done.stdout
        after = json.loads(cli("discover", "--json", "who", "owns", "a", "domain", "name", env=env).stdout)
        assert after["search_mode"] == "fused"
        assert after["servers"][0]["name"] == "io.github.bharathvaj-ganesan/whois-mcp"
        assert "embedded 0 servers" in cli("embed", env=env).stdout


@pytest.mark.slow
async def test_later_pages_are_ranked_as_the_first_was(
    seeded_pg15: str, semantic_base_settings: Settings
) -> None:
    from mcplookup_mcp.core.errors import Unavailable

    service = await open_service(seeded_pg15, semantic_base_settings)
    embedder = service.discovery.semantic.embedder
    assert embedder is not None
    working = embedder.embed_query
    try:
        first = await service.discover({"query": "monitor my servers and alerts", "limit": 3}, transport="t")
        assert first.search_mode == "fused" and first.next_cursor

        def broken(text: str) -> Any:
            raise RuntimeError("broken model")

        embedder.embed_query = broken  # type: ignore[method-assign]
        # A fused page's cursor is never continued in another order: the caller is told to retry.
        with pytest.raises(Unavailable, match=r"could not be ranked as the first was .* retry"):
            await service.discover(
                {"query": "monitor my servers and alerts", "limit": 3, "cursor": first.next_cursor},
                transport="t",
            )
        lexical = await service.discover({"query": "store files in the cloud", "limit": 3}, transport="t")
        assert lexical.search_mode == "lexical" and lexical.next_cursor
        embedder.embed_query = working  # type: ignore[method-assign]
        # ... and a lexical page's cursor goes on lexically though the model is back.
        second = await service.discover(
            {"query": "store files in the cloud", "limit": 3, "cursor": lexical.next_cursor}, transport="t"
        )
        assert second.search_mode == "lexical"
        assert not {s.name for s in second.servers} & {s.name for s in lexical.servers}
    finally:
        service.discovery.semantic.close()
        await service.repo.close()


@pytest.mark.slow
async def test_two_replicas_share_the_embedding_work(db_url: str, semantic_settings: Settings) -> None:
    """Each claims its batch with SKIP LOCKED: together they embed every server once."""
    one = await open_service(db_url, semantic_settings)
    two = await open_service(db_url, semantic_settings)
    try:
        entries = entries_of(json.loads(SEED.read_text(encoding="utf-8")))[:80]
        await Importer(one.repo, utcnow).run(entries)
        with psycopg.connect(db_url, autocommit=True) as conn:
            listed = conn.execute("SELECT count(*) FROM mcp_servers WHERE status = 'active'").fetchone()
        assert listed is not None
        # Replica one is mid-batch (its rows locked until it commits): replica two embeds all the others,
        # and never one of those.
        with psycopg.connect(db_url) as holder:
            held = holder.execute(
                "SELECT id FROM mcp_servers WHERE status = 'active' ORDER BY id LIMIT 8 FOR NO KEY UPDATE"
            ).fetchall()
            by_two = await EmbeddingWorker(two.discovery.semantic).run_until_done()
            assert by_two == listed[0] - len(held)
            holder.rollback()
        assert await EmbeddingWorker(one.discovery.semantic).run_until_done() == len(held)
        # Both at once: nothing is left, nothing is embedded twice.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE server_embeddings SET stale = true")
        done = await asyncio.gather(
            EmbeddingWorker(one.discovery.semantic).run_until_done(),
            EmbeddingWorker(two.discovery.semantic).run_until_done(),
        )
        assert sum(done) == listed[0], done
        with psycopg.connect(db_url, autocommit=True) as conn:
            stored = conn.execute("SELECT count(*) FROM server_embeddings WHERE NOT stale").fetchone()
        assert stored == (listed[0],)
    finally:
        for service in (one, two):
            service.discovery.semantic.close()
            await service.repo.close()


async def test_a_fallback_answer_is_cached_briefly_and_the_fused_one_comes_back(
    db_url: str, semantic_settings: Settings
) -> None:
    """While the model fails the answer is lexical and cached only briefly; once it recovers, the same
    question is answered by meaning again within seconds, not after the cache's lifetime."""
    service = await open_service(db_url, replace(semantic_settings, discover_cache_seconds=600.0))
    semantic = service.discovery.semantic
    embedder = semantic.embedder
    assert embedder is not None
    try:
        entries = [
            e
            for e in json.loads(SEED.read_text(encoding="utf-8"))
            if "whois" in e["name"] or "gmail" in e["name"] or "calculator" in e["name"]
        ]
        await Importer(service.repo, utcnow).run(entries_of(entries))
        await EmbeddingWorker(semantic).run_until_done()
        working = embedder.embed_query

        def broken(text: str) -> Any:
            raise RuntimeError("broken model")

        cache = service.discovery.answers
        now = [1000.0]
        cache._clock = lambda: now[0]
        embedder.embed_query = broken  # type: ignore[method-assign]
        question = {"query": "who owns a domain name"}
        first = await service.discover(question, transport="t")
        assert first.search_mode == "lexical" and "failed" in (first.lexical_reason or "")
        embedder.embed_query = working  # type: ignore[method-assign]
        assert (await service.discover(question, transport="t")).search_mode == "lexical", "briefly cached"
        now[0] += 2 * 2.0 + 0.1  # past the fallback's fresh and stale time, far inside the cache's 600 s
        again = await service.discover(question, transport="t")
        assert again.search_mode == "fused"
        assert again.servers[0].name == "io.github.bharathvaj-ganesan/whois-mcp"
        now[0] += 60
        assert (await service.discover(question, transport="t")) is again, "a fused answer is kept"
    finally:
        semantic.close()
        await service.repo.close()


@pytest.mark.slow  # the seeded databases: the seed embedded once per session and backend
@pytest.mark.parametrize("storage", ["pg15", "pg18"])
async def test_a_filtered_search_takes_the_nearest_within_its_filters(
    storage: str, request: pytest.FixtureRequest, semantic_base_settings: Settings, template_db: str
) -> None:
    """The 40 nearest servers overall may hold none a filter keeps: a filtered search's meaning comes
    from the nearest among the servers its filters keep (pgvector filtered in its index scan; in
    process, only the kept rows scored)."""
    url = request.getfixturevalue("seeded_pg15" if storage == "pg15" else "seeded_pg18")
    service = await open_service(url, semantic_base_settings)
    semantic = service.discovery.semantic
    try:
        question = "edit the cells of an excel workbook"
        plan = service.discovery.plan({"query": question, "transport": "sse"})
        with psycopg.connect(url, autocommit=True) as conn:
            kept = {
                row[0]
                for row in conn.execute(
                    "SELECT id FROM mcp_servers WHERE status = 'active' AND transports @> ARRAY['sse']"
                )
            }
        assert 3 <= len(kept) < 40
        generation = service.discovery._generation_number
        overall, _ = await semantic.evidence(question, generation)
        within, reason = await semantic.evidence(question, generation, plan.params)
        assert overall is not None and within is not None, reason
        assert set(within.ids) == kept, "every kept server has a vector, and fewer than 40 are kept"
        assert within.similarities == sorted(within.similarities, reverse=True)
        assert kept - set(overall.ids), "some kept servers are not among the 40 nearest overall"
        assert within.bound == -1.0
        # Each kept server near enough to be a candidate (sem_floor) is one, with its similarity.
        close = [
            i for i, sim in zip(within.ids, within.similarities, strict=True) if sim >= FUSION["sem_floor"]
        ]
        assert close, [round(sim, 3) for sim in within.similarities]
        with psycopg.connect(url, autocommit=True) as conn:
            names = {
                row[0] for row in conn.execute("SELECT name FROM mcp_servers WHERE id = ANY(%s)", (close,))
            }
        result = await service.discover({"query": question, "transport": "sse"}, transport="t")
        assert result.search_mode == "fused"
        assert names <= {s.name for s in result.servers if s.match.similarity is not None}
        assert result.servers[0].name == "io.github.haris-musa/excel-mcp-server"
        # A filter that keeps nothing embedded is still a fused answer: the meaning found nothing there.
        none, reason = await semantic.evidence(question, generation, plan.params | {"domain": "nowhere.test"})
        assert none is not None and none.ids == [] and reason is None
    finally:
        semantic.close()
        await service.repo.close()
