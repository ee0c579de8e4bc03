"""What semantic search costs besides answering: embedding the seed, a synthesized sample (extrapolated
to 100k servers), and a question nobody asked before; with the memory of the process doing it.

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres MCPLOOKUP_EMBEDDING_MODEL=DIR \\
        python bench/embed_cost.py [--sample 2000]

Each figure comes from the service's own code: the seed is imported (bench/discover.py's `seeded`), the
embedding worker embeds it as a running server's would, then the database is grown to `--sample` rows
with bench/synth.py (copies of the seed rows, so texts of the same lengths) and the new rows embedded
too. 100k is the sample's CPU time a server times 100,000, nothing else served meanwhile (wall time
is printed too). Memory is this
process's (VmRSS, VmHWM), the model loaded. Databases `mcpl_embed_cost_*` are dropped at the end.
Printed, never asserted; the machine is shared, so take the figures as of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _memory() -> str:
    status = Path("/proc/self/status").read_text()
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return (
        f"rss {int(found.get('VmRSS', 0)) / 1024:.0f} MiB, peak {int(found.get('VmHWM', 0)) / 1024:.0f} MiB"
    )


def _cpu() -> float:
    """This process's CPU seconds, every thread (the worker embeds in threads): on a shared machine the
    steadier figure, since the wall time also counts what other processes took of the cores."""
    times = os.times()
    return times.user + times.system


async def _embed(url: str, model: str) -> tuple[int, float, float]:
    from mcplookup_mcp.core.settings import load_settings
    from mcplookup_mcp.services.embedding_worker import EmbeddingWorker
    from mcplookup_mcp.services.semantic import SemanticSearch
    from mcplookup_mcp.store.repository import Repository, make_pool

    pool = make_pool(url, 2)
    await pool.open(wait=True)
    try:
        semantic = SemanticSearch(Repository(pool), load_settings({"MCPLOOKUP_EMBEDDING_MODEL": model}))
        if semantic.embedder is None:
            raise SystemExit(f"no model: {semantic.reason}")
        started, cpu = time.perf_counter(), _cpu()
        stored = await EmbeddingWorker(semantic).run_until_done()
        took, used = time.perf_counter() - started, _cpu() - cpu
        semantic.close()
        return stored, took, used
    finally:
        await pool.close()


def _questions(model: str) -> tuple[float, float]:
    """Mean ms to embed a question never asked before, and one asked again (the per-replica cache)."""
    from search_quality import CASES, FRESH

    from mcplookup_mcp.services.embedder import load_embedder

    embedder, reason = load_embedder(model)
    if embedder is None:
        raise SystemExit(f"no model: {reason}")
    questions = [q for q, _ in CASES + FRESH]
    started = time.perf_counter()
    for q in questions:
        embedder.embed_query(q)
    new = (time.perf_counter() - started) / len(questions) * 1000
    started = time.perf_counter()
    for q in questions:
        embedder.embed_query(q)
    again = (time.perf_counter() - started) / len(questions) * 1000
    return new, again


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=int, default=2000, help="rows of the synthesized sample")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL")
    model = os.environ.get("MCPLOOKUP_EMBEDDING_MODEL")
    if not admin or not model:
        print("set DATABASE_URL (an admin connection) and MCPLOOKUP_EMBEDDING_MODEL (the model directory)")
        return 2
    from discover import seeded
    from synth import synthesize

    name = f"mcpl_embed_cost_{os.getpid()}"
    try:
        url = asyncio.run(seeded(admin, name))
        print(f"before the model: {_memory()}", flush=True)
        new, again = _questions(model)
        print(f"a new question: {new:.1f} ms to embed; asked again: {again * 1000:.1f} µs ({_memory()})")
        seed, took, used = asyncio.run(_embed(url, model))
        print(
            f"the seed: {seed} servers in {took:.1f} s, {used:.1f} s of CPU, {used / seed * 1000:.1f} ms of CPU "
            f"a server ({_memory()})"
        )
        with psycopg.connect(url, autocommit=True) as conn:
            synthesize(conn, args.sample)
        rows, took, used = asyncio.run(_embed(url, model))
        each = used / rows
        print(
            f"a synthesized sample: {rows} more servers in {took:.1f} s, {used:.1f} s of CPU, {each * 1000:.1f} ms "
            f"of CPU a server ({_memory()}); 100,000 servers at that rate: {each * 100_000 / 60:.0f} CPU minutes "
            f"(extrapolated from the sample)"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
