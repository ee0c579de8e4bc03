"""Load and soak: many concurrent clients over REST and MCP for a minute, against `mcplookup serve --workers 2`.

    python bench/load.py [--clients 200] [--seconds 60] [--warmup 5] [--workers 2]

A scratch database `mcpl_load_<pid>` is created, migrated and loaded with the seed (as bench/discover.py
does it) and dropped at the end; the server runs as its own process (bench/discover.py's serve(),
MCPLOOKUP_WORKERS standing for --workers) with REDIS_URL (default
redis://127.0.0.1:6379/13, keys under a prefix of this run's own), the scheduler off (the seed's
endpoints are not reachable from here) and a loopback DNS server of this process as its nameserver.
Its per-address rate limits are raised: every client here comes from 127.0.0.1, and the defaults would
refuse most of them. Refusals that still happen (429, or a tool call refused for its rate) are counted
apart from errors.

Half the clients speak REST (one httpx connection each), half MCP: each call one JSON-RPC `tools/call`
POSTed to /mcp in the per-request revision, the same bytes the SDK's own client sends in that mode.
Each client loops over a mix: 90% discover (the questions of bench/search_quality.py, drawn on a Zipf
spread: the first asked most), 5% get_server, 4% server health, 1% register then verify. The verify
finds no DNS TXT record (none is published), so its refusal is expected and counted as such.
Requests of the first --warmup seconds are not counted. The clients run in this process on the same
machine, so their CPU is taken from the server's share; the line "client CPU" says how much.

Goal: 200 clients for 60 s with zero 5xx and zero failed tool calls other than rate-limit refusals, and
server memory flat (RSS of the parent and its workers, end over start). Printed, never asserted; the
exit status is 1 if any 5xx or transport error happened, so a smoke run can catch it.
Needs DATABASE_URL (an admin connection to the PostgreSQL that may hold scratch databases).

Measured: 200 clients for 60 s (5 s warm-up), two workers, the seed imported, the answer cache as
configured, on a machine of 2 cores shared with other test suites running at the same time (load
average 3.5-4.6 over the run), so the throughput is a floor and moves with what else runs:

    throughput    599.6 req/s overall (35979 requests)
      operation     req/s   p50 ms   p95 ms   p99 ms      ok  expected_refusal  rate_limited     5xx  ...
      discover      534.4    323.3    526.6    620.4   32061                 0             0       0
      get_server     30.5    267.8    466.3    520.0    1828                 0             0       0
      health         22.9    291.4    472.3    535.7    1371                 0             0       0
      register        6.0    341.2    530.4    588.9     359                 0             0       0
      verify          6.0    364.7    562.4    671.3       0               360             0       0
    errors: 5xx 0, transport 0, failed 0; not errors: rate-limited 0, expected refusals 360
    server RSS (parent + workers): ready 256 MiB, start 273 MiB, middle 276 MiB, end 276 MiB;
        end/start 1.01, end/middle 1.00
    server RSS at each 10 s: 275 275 276 276 276 276 MiB
    server counters (whole run, warm-up included): redis outages 0, redis fallbacks 0, rate limited 0
    client CPU: 0.46 cores (this process, timed run)

Two earlier runs of the same load gave 578 and 363 req/s overall (discover p99 889 and 1070 ms), both
with zero errors and memory level after the warm-up (end/middle 1.00). The clients never pause, so the
server is saturated and latency is queueing: p50 is about clients / throughput. In the first of those
runs one worker logged a Redis outage of 0.1 s right at the start (a call past its 0.25 s deadline
while 200 connections opened at once): it answered from PostgreSQL and counted limits in process for
that moment, as designed, with no error seen by any client.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from discover import MODERN_META, QUERIES, _mcp_headers, _rest_path, seeded, serve  # noqa: E402

from mcplookup_mcp.core.settings import Settings  # noqa: E402
from mcplookup_mcp.probe.devdns import ThreadedDnsServer  # noqa: E402

OPERATIONS = ("discover", "get_server", "health", "register", "verify")
# What a client picks each turn; "register" goes on to verify the claim it made.
Mix = tuple[tuple[str, int], ...]
MIX: Mix = (("discover", 90), ("get_server", 5), ("health", 4), ("register", 1))
# Outcomes. Errors: 5xx, transport (no HTTP answer: refused, reset, timed out), failed (any other
# non-2xx, or a tool call with isError). Not errors: rate-limited, expected refusal (verify without
# a record).
OUTCOMES = ("ok", "expected_refusal", "rate_limited", "5xx", "transport", "failed")
ERRORS = ("5xx", "transport", "failed")
TIMEOUT = 30.0
TICK = os.sysconf("SC_CLK_TCK")


def _zipf(n: int, s: float = 1.0) -> list[float]:
    """Cumulative weights of ranks 1..n, the k-th asked in proportion to 1/k**s."""
    return list(itertools.accumulate(1 / k**s for k in range(1, n + 1)))


@dataclass
class Figures:
    seconds: float = 0.0
    clients: int = 0
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[str] = field(default_factory=list)  # the first few errors, for the reader
    rss: dict[str, int] = field(default_factory=dict)  # moment -> bytes, server processes together
    rss_series: list[int] = field(default_factory=list)  # bytes at each sixth of the timed run
    client_cpu: float = 0.0  # this process's CPU seconds over the timed run
    server: dict[str, float] = field(default_factory=dict)  # counters read from /metrics at the end

    def note(self, op: str, outcome: str, elapsed: float, detail: str = "") -> None:
        self.latency[op].append(elapsed)
        self.outcomes[op][outcome] += 1
        if outcome in ERRORS and len(self.samples) < 10:
            self.samples.append(f"{op} {outcome}: {detail[:200]}")

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.outcomes.values())


class _Answer:
    """One call's outcome and, when it succeeded, its JSON payload."""

    def __init__(self, outcome: str, payload: dict[str, Any] | None = None, detail: str = "") -> None:
        self.outcome, self.payload, self.detail = outcome, payload or {}, detail


def _status_outcome(response: httpx.Response) -> _Answer:
    if response.status_code >= 500:
        return _Answer("5xx", detail=f"{response.status_code} {response.text}")
    if response.status_code == 429:
        return _Answer("rate_limited")
    if response.status_code >= 400:
        return _Answer("failed", detail=f"{response.status_code} {response.text}")
    return _Answer("ok", response.json())


class _Rest:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def discover(self, arguments: dict[str, Any]) -> _Answer:
        return _status_outcome(await self.http.get(_rest_path(arguments)))

    async def get_server(self, name: str) -> _Answer:
        return _status_outcome(await self.http.get(f"/api/v1/servers/{quote(name, safe='/')}"))

    async def health(self, name: str) -> _Answer:
        return _status_outcome(await self.http.get(f"/api/v1/health/{quote(name, safe='/')}"))

    async def register(self, domain: str) -> _Answer:
        body = {"domain": domain, "endpoint": f"https://{domain}/mcp"}
        return _status_outcome(await self.http.post("/api/v1/register", json=body))

    async def verify(self, domain: str, registration_id: str) -> _Answer:
        body = {"domain": domain, "registration_id": registration_id}
        return _status_outcome(await self.http.post("/api/v1/verify", json=body))


class _Mcp:
    """Raw JSON-RPC posts rather than the SDK's Client, because of what each costs this process. Measured
    here (20 clients for 6 s each way, discover_servers against this server, 2 shared cores): the SDK
    client 5.3-5.8 ms of client CPU a call, a raw post 0.84-0.88 ms. With 100 SDK clients the driver
    alone would want the machine's cores and the figures would be the client's. The bytes on the wire
    are those of the SDK in its per-request mode (bench/discover.py's `mcp` driver)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.ids = itertools.count()

    async def _call(self, tool: str, arguments: dict[str, Any]) -> _Answer:
        params = {"name": tool, "arguments": arguments, "_meta": MODERN_META}
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": "tools/call", "params": params}
        headers = _mcp_headers("mcp") | {"Mcp-Name": tool}
        response = await self.http.post("/mcp", content=json.dumps(body), headers=headers)
        answer = _status_outcome(response)
        if answer.outcome != "ok":
            return answer
        if "error" in answer.payload:
            return _Answer("failed", detail=json.dumps(answer.payload["error"]))
        result = answer.payload["result"]
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []))
            return _Answer("rate_limited" if text.startswith("too many ") else "failed", detail=text)
        return _Answer("ok", result.get("structuredContent") or {})

    async def discover(self, arguments: dict[str, Any]) -> _Answer:
        return await self._call("discover_servers", arguments)

    async def get_server(self, name: str) -> _Answer:
        return await self._call("get_server", {"name": name})

    async def health(self, name: str) -> _Answer:
        return await self._call("get_server_health", {"name": name})

    async def register(self, domain: str) -> _Answer:
        return await self._call("register_server", {"domain": domain, "endpoint": f"https://{domain}/mcp"})

    async def verify(self, domain: str, registration_id: str) -> _Answer:
        return await self._call("verify_domain", {"domain": domain, "registration_id": registration_id})


async def _timed(
    figures: Figures, counting: Callable[[float], bool], op: str, call: Callable[[], Awaitable[_Answer]]
) -> _Answer:
    started = time.perf_counter()
    try:
        answer = await call()
    except httpx.HTTPError as exc:
        answer = _Answer("transport", detail=f"{type(exc).__name__}: {exc}")
    if op == "verify" and answer.outcome == "ok" and answer.payload.get("verified") is False:
        answer = _Answer("expected_refusal", answer.payload)
    if counting(started):
        figures.note(op, answer.outcome, time.perf_counter() - started, answer.detail)
    return answer


async def _client(
    index: int,
    base: str,
    names: list[str],
    figures: Figures,
    counted_from: float,
    stop: float,
    mix: Mix = MIX,
    addressed: bool = False,
) -> None:
    rng = random.Random(index)  # a workload drawn the same each run, not a secret
    questions = _zipf(len(QUERIES))
    picks, weights = zip(*mix, strict=True)
    cumulative = list(itertools.accumulate(weights))
    registered = itertools.count()

    def counting(started: float) -> bool:
        return counted_from <= started < stop

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # addressed: each client speaks for an address of its own (the server trusts 127.0.0.1 as a proxy),
    # as distinct users would, so one client's writes bind only its own reads to the primary.
    headers = {"X-Forwarded-For": f"198.18.{index // 250}.{1 + index % 250}"} if addressed else None
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT, limits=limits, headers=headers) as http:
        surface = _Rest(http) if index % 2 == 0 else _Mcp(http)
        while time.perf_counter() < stop:
            op = picks[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
            if op == "discover":
                query = QUERIES[bisect.bisect(questions, rng.random() * questions[-1])]
                await _timed(figures, counting, op, partial(surface.discover, {"query": query, "limit": 10}))
            elif op in ("get_server", "health"):
                await _timed(figures, counting, op, partial(getattr(surface, op), rng.choice(names)))
            else:
                domain = f"c{index}-{next(registered)}.load{os.getpid()}.example.com"
                claim = await _timed(figures, counting, op, partial(surface.register, domain))
                registration_id = claim.payload.get("registration_id")
                if claim.outcome == "ok" and registration_id:
                    await _timed(
                        figures, counting, "verify", partial(surface.verify, domain, registration_id)
                    )


def _server_pids(parent: int) -> list[int]:
    """The server process and every process below it (its workers)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        children[ppid].append(int(entry))
    found: list[int] = []
    todo = [parent]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss(parent: int) -> int:
    total = 0
    for pid in _server_pids(parent):
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(
    base: str,
    server_pid: int,
    names: list[str],
    clients: int,
    seconds: float,
    warmup: float,
    mix: Mix = MIX,
    addressed: bool = False,
) -> Figures:
    figures = Figures(seconds=seconds, clients=clients)
    figures.rss["ready"] = _rss(server_pid)
    counted_from = time.perf_counter() + warmup
    stop = counted_from + seconds

    async def sample_memory() -> None:
        await asyncio.sleep(warmup)
        figures.rss["start"] = _rss(server_pid)
        cpu = _cpu_seconds()
        # Six samples over the run besides these three: whether memory rises all along or levels off.
        for step in range(1, 7):
            await asyncio.sleep(max(counted_from + seconds * step / 6 - time.perf_counter(), 0))
            figures.rss_series.append(_rss(server_pid))
            if step == 3:
                figures.rss["middle"] = figures.rss_series[-1]
        figures.rss["end"] = figures.rss_series[-1]
        figures.client_cpu = _cpu_seconds() - cpu

    await asyncio.gather(
        sample_memory(),
        *(_client(i, base, names, figures, counted_from, stop, mix, addressed) for i in range(clients)),
    )
    figures.server = await _server_counters(base)
    return figures


# Counters the server keeps that errors seen from outside would not show: Redis given up on under load
# (the server then answers from PostgreSQL and counts limits in process) and refusals by rate.
_COUNTERS = ("redis_outages", "redis_fallbacks", "rate_limited")


async def _server_counters(base: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        response = await http.get("/metrics")
    if response.status_code != 200:
        return {}
    found = dict.fromkeys(_COUNTERS, 0.0)
    for family in text_string_to_metric_families(response.text):
        if family.name in found:
            found[family.name] = sum(x.value for x in family.samples if x.name.endswith("_total"))
    return found


def _listed_names(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name FROM mcp_servers WHERE status = 'active' ORDER BY name").fetchall()
    return [row[0] for row in rows]


def server_env(redis_url: str, dns: ThreadedDnsServer) -> dict[str, str]:
    """What the served process gets besides what bench/discover.py's serve() sets."""
    return {
        "REDIS_URL": redis_url,
        "MCPLOOKUP_REDIS_PREFIX": f"load{os.getpid()}",
        "MCPLOOKUP_DNS_NAMESERVERS": ",".join(f"{host}:{port}" for host, port in dns.nameservers),
        "MCPLOOKUP_DNS_TIMEOUT": "2",
        # Every client is 127.0.0.1: one address, so each budget is raised to its ceiling. The pool is
        # the server's default, not the 8 bench/discover.py runs with.
        "MCPLOOKUP_RATE_LIMIT_PER_MINUTE": "100000",
        "MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE": "10000000",
        "MCPLOOKUP_RATE_LIMIT_REGISTER_PER_MINUTE": "100000",
        "MCPLOOKUP_RATE_LIMIT_VERIFY_PER_MINUTE": "100000",
        "MCPLOOKUP_DB_POOL_SIZE": str(Settings.db_pool_size),
    }


def run(
    admin: str,
    redis_url: str,
    clients: int,
    seconds: float,
    warmup: float,
    workers: int,
    mix: Mix = MIX,
) -> Figures:
    """Build the scratch database, serve it, drive it with `mix`, tear everything down; the figures."""
    scratch = f"mcpl_load_{os.getpid()}"
    url = asyncio.run(seeded(admin, scratch))
    dns = ThreadedDnsServer()
    dns.start()
    try:
        names = _listed_names(url)
        proc, base = serve(url, workers, server_env(redis_url, dns))
        try:
            return asyncio.run(drive(base, proc.pid, names, clients, seconds, warmup, mix))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        dns.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def _ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _width(outcome: str) -> int:
    return max(len(outcome), 6) + 2


def report(figures: Figures, workers: int) -> list[str]:
    lines = [
        f"{figures.clients} clients (half REST, half MCP) for {figures.seconds:g} s against {workers} server "
        f"processes, {os.cpu_count()} cores on this machine (shared: other work may run on it)",
        "goal: zero 5xx and zero failed tool calls other than rate-limit refusals; memory flat (end/start ~1)",
    ]
    n = sum(len(v) for v in figures.latency.values())
    lines.append(f"throughput {n / figures.seconds:8.1f} req/s overall ({n} requests)")
    lines.append(
        f"  {'operation':<11}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        + "".join(f"{o:>{_width(o)}}" for o in OUTCOMES)
    )
    for op in OPERATIONS:
        values = figures.latency.get(op, [])
        counts = figures.outcomes.get(op, Counter())
        lines.append(
            f"  {op:<11}{len(values) / figures.seconds:8.1f}{_ms(values, 50):9.1f}{_ms(values, 95):9.1f}"
            f"{_ms(values, 99):9.1f}" + "".join(f"{counts[o]:>{_width(o)}}" for o in OUTCOMES)
        )
    lines.append(
        "errors: "
        + ", ".join(f"{o} {figures.total(o)}" for o in ERRORS)
        + f"; not errors: rate-limited {figures.total('rate_limited')}, "
        f"expected refusals {figures.total('expected_refusal')}"
    )
    rss = figures.rss
    lines.append(
        "server RSS (parent + workers): "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items())
        + (
            f"; end/start {rss['end'] / rss['start']:.2f}, end/middle {rss['end'] / rss['middle']:.2f}"
            if rss.get("start") and rss.get("middle") and rss.get("end")
            else ""
        )
    )
    if figures.rss_series:
        lines.append(
            f"server RSS at each {figures.seconds / 6:.3g} s: "
            + " ".join(f"{v / 2**20:.0f}" for v in figures.rss_series)
            + " MiB"
        )
    if figures.server:
        lines.append(
            "server counters (whole run, warm-up included): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in figures.server.items())
        )
    lines.append(
        f"client CPU: {figures.client_cpu / figures.seconds:.2f} cores (this process, timed run)"
        if figures.seconds
        else ""
    )
    lines.extend(f"  first errors: {s}" for s in figures.samples)
    return lines


def exit_code(figures: Figures) -> int:
    """1 when the server answered 5xx or a request got no HTTP answer at all: what a smoke run catches."""
    return 1 if figures.total("5xx") or figures.total("transport") else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before counting starts")
    parser.add_argument("--workers", type=int, default=2, help="server processes (mcplookup serve --workers)")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        print("set DATABASE_URL to an admin connection (e.g. postgresql://postgres@127.0.0.1/postgres)")
        return 2
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    figures = run(admin, redis_url, args.clients, args.seconds, args.warmup, args.workers)
    for line in report(figures, args.workers):
        print(line, flush=True)
    return exit_code(figures)


if __name__ == "__main__":
    sys.exit(main())
