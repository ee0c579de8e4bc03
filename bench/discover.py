"""Discovery latency and throughput at 16 concurrent clients, through REST and through MCP.

    python bench/discover.py --sizes 471 100000 [--seconds 20] [--clients 16] [--questions 16]
                             [--driver wrk|python] [--answers cached searched browsed] [--no-yardstick]

wrk is the Debian package `wrk` (apt-get install wrk); without it the python driver is used.

The yardstick (bench/yardstick.py) runs first at each size: a plain Starlette + psycopg app answering
one ranked full-text statement (ts_rank over name and description, GIN index) on the same rows, on the
same server stack. Every figure is then printed again as a ratio to the yardstick's REST answers in the
same run: on a shared machine only ratios within one run mean anything.

For each size a database `mcpl_bench_<size>` (`--database-prefix` names it otherwise) is built once
(migrated, the seed imported, synthesized up to the size with bench/synth.py, ANALYZEd) and kept for
later runs; a kept one gets the migrations added since it was built. `mcplookup serve` runs as its own
process; the clients run on the same machine, so their CPU cost is in the figures too.

Drivers: `wrk` (the default when wrk is installed) keeps 16 connections busy from one small C process,
sending GET /api/v1/discover or a JSON-RPC tools/call POSTed to /mcp. `mcp` is the protocol revision
2026-07-28, one self-contained request per POST, which the SDK's own client uses by default against
this server; `mcp-legacy` is the 2025-06-18 revision posted without a session, as older clients do in
stateless mode. `python` runs httpx clients and the MCP SDK's own client in this process, which costs
the machine far more CPU per request than the server does. Every request is sent once and checked
before the timed run.

Answers: `cached` runs the server as configured, so the 41 questions, asked over and over, are answered
from its answer cache after their first search: this is the figure for questions agents keep asking.
`searched` runs it with the answer cache off (MCPLOOKUP_DISCOVER_CACHE_SECONDS=0), so every request is
a full search in PostgreSQL: the figure for questions nobody asked before. Both are printed by default.
`browsed` (asked for by name) also runs with the cache off, but asks for keyset pages without query text
in four orders: the same server, pool, statement round trip and page of ten servers with nothing to
rank, so it tells what the stack costs before any ranking does.
With wrk, each line ends with the CPU time per request of the server process and of the PostgreSQL
backends connected to the bench database (user + system, from /proc, over the timed run; PostgreSQL's
own background processes are left out): where the time of a request goes.
sentence-embedding model (`--model DIR`, default MCPLOOKUP_EMBEDDING_MODEL); before the fused runs every
server of the database is embedded (once: vectors are kept). Each line ends with the server process's
resident memory now and at its peak (VmRSS, VmHWM).
Needs DATABASE_URL (an admin connection to the server that holds the bench databases).
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search_quality import CASES  # noqa: E402
from synth import synthesize  # noqa: E402

QUERIES = [query for query, _ in CASES]
YARDSTICK = ROOT / "bench" / "yardstick.py"
# What each request asks: a question for `cached` and `searched`; for `browsed`, a keyset page in one of
# the orders listed without query text, with nothing to rank.
Arguments = dict[str, Any]
ASKED: dict[str, list[Arguments]] = {
    "searched": [{"query": q, "limit": 10} for q in QUERIES],
    "browsed": [{"sort": s, "limit": 10} for s in ("trust", "newest", "name", "latency")],
}
ASKED["cached"] = ASKED["searched"]


def _url(admin: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(admin, dbname=dbname)


def _as_uri(conninfo: str) -> str:
    from urllib.parse import urlencode

    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    extra = {k: v for k, v in parts.items() if k in ("host", "port", "user", "password")}
    return f"postgresql:///{parts['dbname']}?{urlencode(extra)}"


async def seeded(admin: str, name: str) -> str:
    """Database `name` created afresh (any old one dropped), migrated and loaded with the seed."""
    from search_quality import seed_file

    from mcplookup_mcp.services.importer import Importer, entries_of
    from mcplookup_mcp.services.service import utcnow
    from mcplookup_mcp.store.migrate import apply_migrations
    from mcplookup_mcp.store.repository import Repository, make_pool

    url = _url(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    await apply_migrations(url)
    pool = make_pool(url, 2)
    await pool.open(wait=True)
    try:
        await Importer(Repository(pool), utcnow).run(entries_of(json.loads(seed_file().read_text())))
    finally:
        await pool.close()
    return url


async def build(admin: str, size: int, prefix: str = "mcpl_bench") -> str:
    name = f"{prefix}_{size}"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    url = _url(admin, name)
    if exists:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM mcp_servers").fetchone()
        if row and abs(row[0] - size) <= max(size // 100, 10):
            from mcplookup_mcp.store.migrate import apply_migrations

            # A database kept from an earlier checkout gets the migrations added since.
            await apply_migrations(url)
            return url
    await seeded(admin, name)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        synthesize(conn, size)
        conn.execute("VACUUM ANALYZE mcp_servers")
        conn.execute("VACUUM ANALYZE search_postings")
    print(f"  built {name} in {time.perf_counter() - started:.1f} s", flush=True)
    return url


async def embed_all(url: str, model: str) -> None:
    """Every server of the database embedded with `model` (what the server's worker would do)."""
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
        started = time.perf_counter()
        stored = await EmbeddingWorker(semantic).run_until_done()
        if stored:
            took = time.perf_counter() - started
            print(
                f"  embedded {stored} servers in {took:.1f} s ({took / stored * 1000:.1f} ms each)",
                flush=True,
            )
        semantic.close()
    finally:
        await pool.close()


def _memory(pid: int) -> str:
    """The process's resident memory now and at its peak, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return f"  rss {int(found.get('VmRSS', 0)) / 1024:.0f} MiB (peak {int(found.get('VmHWM', 0)) / 1024:.0f})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(proc: subprocess.Popen[bytes], base: str) -> tuple[subprocess.Popen[bytes], str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not become ready")


def serve_yardstick(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = os.environ | {"DATABASE_URL": _as_uri(url), "PORT": str(port)}
    return _ready(subprocess.Popen([sys.executable, str(YARDSTICK)], env=env), f"http://127.0.0.1:{port}")


def serve(url: str, workers: int, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = (
        os.environ
        | {
            "DATABASE_URL": _as_uri(url),
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "MCPLOOKUP_DB_POOL_SIZE": "8",
            "MCPLOOKUP_WORKERS": str(workers),
            # Discovery alone: the synthesized endpoints are not real, and probing them would both load
            # the machine and flip their health while the bench runs.
            "MCPLOOKUP_SCHEDULER": "false",
            # wrk sends every request from one address: the per-address discovery budget would refuse it.
            "MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE": "10000000",
        }
        | extra_env
    )
    proc = subprocess.Popen([sys.executable, "-m", "mcplookup_mcp", "serve"], env=env)
    return _ready(proc, f"http://127.0.0.1:{port}")


MODERN_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-06-18"
# What the SDK's own client puts in every request of the per-request protocol revision.
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _rest_path(arguments: Arguments) -> str:
    return "/api/v1/discover?" + urlencode({"q" if k == "query" else k: v for k, v in arguments.items()})


async def _rest_client(base: str, stop: float, index: int, out: list[float], asked: list[Arguments]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        i = index
        while time.perf_counter() < stop:
            arguments = asked[i % len(asked)]
            i += 1
            t = time.perf_counter()
            response = await http.get(_rest_path(arguments))
            response.raise_for_status()
            out.append(time.perf_counter() - t)


async def _mcp_client(
    base: str,
    stop: float,
    index: int,
    out: list[float],
    asked: list[Arguments],
    *,
    mode: str = MODERN_VERSION,
) -> None:
    from mcp.client.client import Client

    async with Client(f"{base}/mcp", mode=mode) as client:
        i = index
        while time.perf_counter() < stop:
            arguments = asked[i % len(asked)]
            i += 1
            t = time.perf_counter()
            result = await client.call_tool("discover_servers", arguments)
            assert not result.is_error
            out.append(time.perf_counter() - t)


def _requests(kind: str, asked: list[Arguments]) -> list[str]:
    if kind == "rest":
        return [_rest_path(arguments) for arguments in asked]
    if kind == "yardstick":
        return ["/search?" + urlencode({"q": arguments["query"]}) for arguments in asked]
    lines = []
    for i, arguments in enumerate(asked):
        params: dict[str, Any] = {"name": "discover_servers", "arguments": arguments}
        if kind == "mcp":
            params["_meta"] = MODERN_META
        lines.append(json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}))
    return lines


def _mcp_headers(kind: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if kind == "mcp":
        return headers | {
            "MCP-Protocol-Version": MODERN_VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": "discover_servers",
        }
    return headers | {"MCP-Protocol-Version": LEGACY_VERSION}


def _check(kind: str, base: str, lines: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for line in lines:
            if kind in ("rest", "yardstick"):
                response = http.get(line)
                response.raise_for_status()
            else:
                response = http.post("/mcp", content=line, headers=_mcp_headers(kind))
                response.raise_for_status()
                if response.json()["result"]["isError"]:
                    raise RuntimeError(f"discover_servers failed: {response.text[:300]}")


def _backends(url: str) -> set[str]:
    """The PostgreSQL backends now connected to the bench database (the server's pool, its listener)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {str(pid) for (pid,) in rows}


def _cpu_seconds(server_pid: int, backends: set[str] | None = None) -> tuple[float, float] | None:
    """CPU time (user + system) so far of the server process and of the local PostgreSQL processes:
    `backends` when given (those serving the bench database: on a machine shared with other work the
    other backends are not this run's), else every process named postgres; None where /proc does not
    tell (another OS, or PostgreSQL on another machine)."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(pid: str) -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    try:
        server = used(str(server_pid))
    except OSError:
        return None
    database, seen = 0.0, False
    for pid in backends if backends is not None else filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if not comm.read().startswith("postgres"):
                    continue
            database += used(pid)
            seen = True
        except OSError:
            continue  # a backend that ended meanwhile
    return (server, database) if seen else None


def _cpu_per_request(before: tuple[float, float] | None, after: tuple[float, float] | None, n: int) -> str:
    if before is None or after is None or not n:
        return ""
    server, database = ((b - a) * 1000 / n for a, b in zip(before, after, strict=True))
    return f"  CPU/request: server {server:.2f} ms, postgres {database:.2f} ms"


def load_wrk(
    kind: str,
    base: str,
    clients: int,
    seconds: float,
    asked: list[Arguments],
    server_pid: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    lines = _requests(kind, asked)
    _check(kind, base, lines)
    script = ROOT / "bench" / "discover.lua"
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write("\n".join(lines) + "\n")
        file.flush()

        def run(duration: float) -> str:
            command = ["wrk", "-t2", f"-c{clients}", f"-d{duration:.0f}s", "-s", str(script), base]
            wire = "rest" if kind == "yardstick" else kind  # the lua script GETs each line for "rest"
            done = subprocess.run(
                [*command, "--", wire, file.name], capture_output=True, text=True, check=True
            )
            return done.stdout

        run(2)
        # The pool's connections stay open through the run: the same backends before and after.
        backends = _backends(url) if url else None
        before = _cpu_seconds(server_pid, backends) if server_pid else None
        out = run(seconds)
        after = _cpu_seconds(server_pid, backends) if server_pid else None
    found = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if not found:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out}")
    r = {k: int(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    if r["non2xx"] or r["socket_errors"]:
        raise RuntimeError(f"wrk saw errors: {found.group(1)}")
    return {
        "n": r["requests"],
        "p50": r["p50_us"] / 1000,
        "p95": r["p95_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "cpu": _cpu_per_request(before, after, r["requests"]),
    }


async def load(kind: str, base: str, clients: int, seconds: float, asked: list[Arguments]) -> dict[str, Any]:
    runners = {
        "rest": _rest_client,
        "mcp": _mcp_client,
        "mcp-legacy": functools.partial(_mcp_client, mode="legacy"),
    }
    runner = functools.partial(runners[kind], asked=asked)
    warm: list[float] = []
    await asyncio.gather(*(runner(base, time.perf_counter() + 2, i, warm) for i in range(clients)))
    samples: list[float] = []
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(runner(base, stop, i, samples) for i in range(clients)))
    elapsed = time.perf_counter() - started
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100)
    return {"n": len(ms), "p50": q[49], "p95": q[94], "p99": q[98], "rps": len(ms) / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[471, 100_000])
    parser.add_argument(
        "--questions", type=int, default=16, help=f"how many of the {len(QUERIES)} intent questions to cycle"
    )
    parser.add_argument("--no-yardstick", action="store_true", help="measure the product alone")
    parser.add_argument(
        "--database-prefix",
        default="mcpl_bench",
        help="bench databases are named PREFIX_SIZE (one schema per prefix: keep them apart)",
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--transports",
        nargs="+",
        default=["rest", "mcp"],
        choices=["rest", "mcp", "mcp-legacy"],
    )
    parser.add_argument(
        "--driver", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (MCPLOOKUP_WORKERS)")
    parser.add_argument(
        "--answers",
        nargs="+",
        default=["cached", "searched"],
        choices=["cached", "searched", "browsed"],
        help="cached: answer cache as configured; searched: cache off, every request a full search; "
        "browsed: cache off, every request a keyset page without query text (nothing ranked)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra server setting"
    )
    parser.add_argument("--search", nargs="+", default=["lexical"], choices=["lexical", "fused"])
    parser.add_argument("--model", default=os.environ.get("MCPLOOKUP_EMBEDDING_MODEL", ""))
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        print("set DATABASE_URL to an admin connection (e.g. postgresql://postgres@127.0.0.1/postgres)")
        return 2
    asked = {answers: questions[: args.questions] for answers, questions in ASKED.items()}
    print(
        f"{args.clients} clients ({args.driver}), {args.seconds:.0f} s per run, {len(asked['searched'])} intent "
        f"questions in rotation (browsed: {len(asked['browsed'])} orders), {args.workers} server "
        f"process(es), settings {extra_env or 'default'}"
    )

    def measure(kind: str, base: str, questions: list[Arguments], pid: int, url: str) -> dict[str, Any]:
        if args.driver == "wrk":
            return load_wrk(kind, base, args.clients, args.seconds, questions, pid, url)
        if kind == "yardstick":
            raise SystemExit("the yardstick is measured with wrk only")
        return asyncio.run(load(kind, base, args.clients, args.seconds, questions))

    def show(size: int, kind: str, answers: str, r: dict[str, Any], memory: str) -> None:
        print(
            f"{size:>9,} servers  {kind:10}  {answers:16}  p50 {r['p50']:6.1f} ms  "
            f"p95 {r['p95']:6.1f} ms  p99 {r['p99']:6.1f} ms  {r['rps']:7.1f} req/s  "
            f"({r['n']} requests){r.get('cpu', '')}{memory}",
            flush=True,
        )

    for size in args.sizes:
        url = asyncio.run(build(admin, size, args.database_prefix))
        figures: list[tuple[str, str, float]] = []
        if not args.no_yardstick and args.driver == "wrk":
            from yardstick import prepare

            prepare(url)
            proc, base = serve_yardstick(url)
            try:
                r = measure("yardstick", base, asked["searched"], proc.pid, url)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
            show(size, "yardstick", "ranked", r, "")
            figures.append(("yardstick", "ranked", r["rps"]))
        if "fused" in args.search:
            if not args.model:
                print("--search fused needs --model DIR or MCPLOOKUP_EMBEDDING_MODEL")
                return 2
            asyncio.run(embed_all(url, args.model))
        for answers in args.answers:
            for search in args.search:
                uncached = {"MCPLOOKUP_DISCOVER_CACHE_SECONDS": "0"} if answers != "cached" else {}
                model = {"MCPLOOKUP_EMBEDDING_MODEL": args.model if search == "fused" else ""}
                proc, base = serve(url, args.workers, extra_env | uncached | model)
                try:
                    for kind in args.transports:
                        r = measure(kind, base, asked[answers], proc.pid, url)
                        show(size, kind, f"{answers} {search}", r, _memory(proc.pid))
                        figures.append((kind, f"{answers} {search}", r["rps"]))
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
        if figures and figures[0][0] == "yardstick":
            unit = figures[0][2]
            print(f"{size:>9,} servers  as a ratio to the yardstick's {unit:.1f} req/s in this run:")
            for kind, answers, rps in figures[1:]:
                print(f"{'':>18}{kind:10}  {answers:16}  {rps / unit:5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
