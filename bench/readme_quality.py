"""Search quality with and without README text: seed servers whose one-line description hides what they
do, each with a README that says it, and questions phrased by what a person wants done.

    python bench/readme_quality.py               # DATABASE_URL, else the embedded PostgreSQL
    python bench/readme_quality.py -v            # and every miss

A scratch database is loaded with the seed; the questions are asked, the fixture READMEs are read from
a raw-content server on loopback (real HTTP, through the same reader and SSRF guard production uses),
and the questions are asked again. search_quality.py's questions are asked both times too, to show the
README text takes nothing from them. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import search_quality  # noqa: E402

# (seed name, its repository's owner/repo, a README opening that says what it does, the question).
# The READMEs are written for this yardstick from what each project does, in its own words' style.
FIXTURES: list[tuple[str, str, str, str]] = [
    (
        "io.github.scorzeth/anki-mcp-server",
        "scorzeth/anki-mcp-server",
        "# Anki MCP Server\n\nCreate flashcards and decks in Anki, review due cards with spaced repetition.",
        "make flashcards to study vocabulary",
    ),
    (
        "io.github.chuckbryan/ynabmcpserver",
        "ChuckBryan/ynabmcpserver",
        "# YNAB MCP Server\n\nRead your You Need A Budget budgets, accounts and transactions: household "
        "budgeting and spending categories.",
        "check my household budget",
    ),
    (
        "io.github.ahujasid/ableton-mcp",
        "ahujasid/ableton-mcp",
        "# AbletonMCP\n\nConnects Ableton Live for prompt-assisted music production: create MIDI tracks, "
        "compose beats and melodies, load instruments.",
        "compose beats and melodies",
    ),
    (
        "io.github.ahujasid/blender-mcp",
        "ahujasid/blender-mcp",
        "# BlenderMCP\n\nPrompt-assisted 3D modeling, scene creation and manipulation in Blender: objects, "
        "materials, lighting.",
        "3d modeling of a scene",
    ),
    (
        "io.github.apeyroux/mcp-xmind",
        "apeyroux/mcp-xmind",
        "# MCP XMind\n\nParse and search XMind mind maps: topics, notes, links and relationships.",
        "search my mind maps",
    ),
    (
        "io.github.wilsonchenghy/shadertoy-mcp",
        "wilsonchenghy/ShaderToy-MCP",
        "# ShaderToy MCP\n\nGenerate complex GLSL fragment shaders and read examples from ShaderToy.",
        "write a glsl fragment shader",
    ),
    (
        "io.github.openbnb-org/mcp-server-airbnb",
        "openbnb-org/mcp-server-airbnb",
        "# Airbnb Search\n\nSearch vacation rentals and accommodation listings, with prices, dates and "
        "guest counts.",
        "find a vacation rental for a week",
    ),
    (
        "io.github.rishabkoul/iterm-mcp-server",
        "rishabkoul/iTerm-MCP-Server",
        "# iTerm MCP Server\n\nExecute shell commands in the terminal and read their output, in iTerm2 on "
        "macOS.",
        "execute shell commands in my terminal",
    ),
    (
        "io.github.geli2001/tft-mcp-server",
        "GeLi2001/tft-mcp-server",
        "# TFT MCP Server\n\nTeamfight Tactics match history and match details through the Riot Games API.",
        "teamfight tactics match history",
    ),
    (
        "io.github.sssjiang/pubchem_mcp_server",
        "sssjiang/pubchem_mcp_server",
        "# PubChem MCP Server\n\nLook up chemical compounds by name: molecular formula, weight, structure "
        "and properties from PubChem.",
        "molecular formula of a chemical compound",
    ),
    (
        "io.github.gotohuman/gotohuman-mcp-server",
        "gotohuman/gotohuman-mcp-server",
        "# gotoHuman MCP Server\n\nHuman-in-the-loop approvals: send an agent's draft to a person for review "
        "and approval before it acts.",
        "ask a person for approval before acting",
    ),
    (
        "io.github.mem0ai/mem0-mcp",
        "mem0ai/mem0-mcp",
        "# Mem0 MCP\n\nPersistent memory for coding preferences: store and search code snippets, "
        "conventions and preferences across sessions.",
        "remember my coding preferences",
    ),
    (
        "io.github.hichana/goalstory-mcp",
        "hichana/goalstory-mcp",
        "# Goal Story MCP\n\nGoal tracking with stories: set personal goals, record progress steps and "
        "reflect on them.",
        "track progress toward my personal goals",
    ),
    (
        "io.github.dinghuazhou/sample-mcp-server-tos",
        "dinghuazhou/sample-mcp-server-tos",
        "# TOS MCP Server\n\nVolcengine TOS object storage: list buckets, list and read objects.",
        "list objects in my storage buckets",
    ),
]


def _serve(readmes: dict[str, str]) -> tuple[ThreadingHTTPServer, str]:
    """A raw-content server on loopback: /<owner>/<repo>/HEAD/README.md."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = readmes.get(self.path)
            data = (body or "404: Not Found").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


async def _ask(service: Any, cases: list[tuple[str, list[str]]]) -> dict[str, Any]:
    answers = []
    for query, expected in cases:
        found = await service.discover({"query": query, "limit": 10}, transport="bench")
        answers.append(
            search_quality.Answer(
                query,
                expected,
                [s.name for s in found.servers],
                [s.name for s in found.servers if s.match.strength in ("exact", "partial")],
                bool(found.no_confident_match),
            )
        )
    figures = dict(search_quality.score(answers))
    figures["ranks"] = {
        a.query: next((i + 1 for i, name in enumerate(a.returned) if name in a.expected), None)
        for a in answers
    }
    figures["tops"] = {a.query: a.returned[:1] for a in answers}
    return figures


async def _measure(database_url: str) -> dict[str, dict[str, Any]]:
    import psycopg
    from psycopg import sql

    from mcplookup_mcp.app import create_app
    from mcplookup_mcp.core.settings import load_settings
    from mcplookup_mcp.probe.dns_resolver import make_resolver
    from mcplookup_mcp.services.importer import Importer, entries_of
    from mcplookup_mcp.services.service import utcnow
    from mcplookup_mcp.services.third_party import ThirdPartyReader
    from mcplookup_mcp.store.migrate import apply_migrations

    readmes = {f"/{repo}/HEAD/README.md": text for _, repo, text, _ in FIXTURES}
    http, base = _serve(readmes)
    port = base.rsplit(":", 1)[1]
    settings = load_settings(
        {
            "MCPLOOKUP_ENV": "test",
            "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "true",
            "MCPLOOKUP_PROBE_ALLOW_CIDRS": "127.0.0.0/8",
            "MCPLOOKUP_PROBE_PORTS": f"443,{port}",
            "MCPLOOKUP_README_BASE_URL": base,
        }
    )
    fixture_cases = [(query, [name]) for name, _, _, query in FIXTURES]
    scratch = f"mcpl_readme_quality_{os.getpid()}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    url = psycopg.conninfo.make_conninfo(database_url, dbname=scratch)
    figures: dict[str, dict[str, Any]] = {}
    try:
        await apply_migrations(url)
        app = create_app(settings, url, background=False)
        service = app.state.service
        await service.repo.open()
        try:
            entries = entries_of(json.loads(search_quality.seed_file().read_text(encoding="utf-8")))
            await Importer(service.repo, utcnow).run(entries)
            # Each fixture must be a seed entry whose own words do not answer its question.
            for name, _, _, _ in FIXTURES:
                await service.get_server({"name": name})
            figures["fixtures, without README"] = await _ask(service, fixture_cases)
            figures["search_quality, without README"] = await _ask(service, search_quality.CASES)
            reader = ThirdPartyReader(service.repo, settings, make_resolver([], 1.0), clock=utcnow)
            for name, _, _, _ in FIXTURES:
                summary = await reader.refresh(name)
                if not summary.read:
                    raise RuntimeError(f"{name}: README not read: {summary}")
            figures["fixtures, with README"] = await _ask(service, fixture_cases)
            figures["search_quality, with README"] = await _ask(service, search_quality.CASES)
        finally:
            await service.repo.close()
    finally:
        http.shutdown()
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
            )
    return figures


def main() -> int:
    figures = asyncio.run(_measure(search_quality.database_url()))
    print(
        f"seed: {search_quality.seed_file()}; {len(FIXTURES)} fixture servers with a README written for them"
    )
    print(f"{'':34} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'prec@3':>7} {'abstain':>8} {'false abst.':>11}")
    for label, f in figures.items():
        print(
            f"{label:34} {f['hit@1']:6.3f} {f['hit@5']:6.3f} {f['mrr']:6.3f} {f['precision@3']:7.3f} "
            f"{f['abstention']:8.3f} {f['false_abstention']:11.3f}"
        )
    for kind in ("fixtures", "search_quality"):
        before, after = figures[f"{kind}, without README"], figures[f"{kind}, with README"]
        for query, rank in after["ranks"].items():
            if rank != before["ranks"][query]:
                print(
                    f"  {kind}: {query!r}: rank {before['ranks'][query]} -> {rank}"
                    f" (top now {after['tops'][query]})"
                )
    if "-v" in sys.argv:
        for label in figures:
            for miss in figures[label]["misses"]:
                print(f"  {label}: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
