"""Two replicas behind nginx against one replica direct, in the same run: req/s, p99 and the ratio.

    python bench/replicas.py [--size 1000] [--seconds 15] [--clients 16]

Each setting is run for REST and MCP (`tools/call` of discover_servers, the per-request revision), for
`searched` answers (MCPLOOKUP_DISCOVER_CACHE_SECONDS=0: every request a full search) and `cached` ones
(the 41 questions of bench/search_quality.py asked over and over: this process's cache, then Redis).
The replicas are `mcplookup serve` processes sharing the bench database (built as bench/discover.py
builds it) and a Redis of this run's own; nginx runs the shipped config the way the tests run it, with
two changes so that what is measured is the replicas: its per-address limit (10 r/s) is lifted, since
wrk sends everything from one address, and its 2 s discovery cache is off. wrk drives 16 connections,
over HTTPS to nginx and plain HTTP direct.

Each line ends with the CPU split over the timed run, in cores busy on average: the replicas, nginx,
PostgreSQL, Redis, and the rest of the machine (wrk itself, and whatever else runs on it). On a machine
with two cores, two replicas cannot take twice one's share while PostgreSQL and the driver need theirs:
the split shows where the limit is. Needs DATABASE_URL (an admin connection) and wrk. Printed, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from discover import ASKED, _as_uri, _free_port, build, load_wrk  # noqa: E402
from stack import Nginx, RedisProcess, Replica  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _named(prefix: str) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().startswith(prefix):
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


def _machine() -> float:
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    idle = int(fields[3]) + int(fields[4])
    return (sum(int(f) for f in fields[:8]) - idle) / TICK


def _split(replica_pids: list[int], redis_pid: int) -> dict[str, float]:
    return {
        "replicas": sum(_cpu(pid) for pid in replica_pids),
        "nginx": sum(_cpu(pid) for pid in _named("nginx")),
        "postgres": sum(_cpu(pid) for pid in _named("postgres")),
        "redis": _cpu(redis_pid),
        "machine": _machine(),
    }


def _cores(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    used = {k: (after[k] - before[k]) / seconds for k in before}
    rest = used.pop("machine") - sum(used.values())
    return "  cores: " + ", ".join(f"{k} {v:.2f}" for k, v in [*used.items(), ("rest", rest)])


def _lift_limits(text: str) -> str:
    text = re.sub(r"^\s*limit_req zone=[^\n]*\n", "", text, flags=re.MULTILINE)
    return text.replace("proxy_cache mcplookup_answers;", "proxy_cache off;")


@contextmanager
def _replicas(count: int, url: str, redis: RedisProcess, cached: bool) -> Iterator[list[Replica]]:
    env = {
        "DATABASE_URL": _as_uri(url),
        "REDIS_URL": redis.url,
        "MCPLOOKUP_REDIS_PREFIX": f"bench{os.getpid()}",
        "MCPLOOKUP_TRUSTED_PROXIES": "127.0.0.1",
        "MCPLOOKUP_ALLOWED_HOSTS": "*",
        "MCPLOOKUP_SCHEDULER": "false",
        "MCPLOOKUP_DB_POOL_SIZE": "8",
        "MCPLOOKUP_RATE_LIMIT_DISCOVER_PER_MINUTE": "10000000",
        "MCPLOOKUP_DISCOVER_CACHE_SECONDS": "15" if cached else "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    replicas = [Replica(_free_port(), env).start() for _ in range(count)]
    try:
        for replica in replicas:
            replica.wait_ready()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


def _run(
    label: str,
    kind: str,
    base: str,
    answers: str,
    args: argparse.Namespace,
    split: Callable[[], dict[str, float]],
) -> dict[str, float]:
    before, started = split(), time.monotonic()
    r = load_wrk(kind, base, args.clients, args.seconds, ASKED[answers])
    # The split covers wrk's warm-up too (2 s of the same load), so it is read over the whole call.
    cores = _cores(before, split(), time.monotonic() - started)
    print(f"  {label:<22} {kind:<5} {r['rps']:8.0f} req/s  p99 {r['p99']:7.2f} ms{cores}", flush=True)
    return r


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL")
    if not admin or not shutil.which("wrk"):
        print("needs DATABASE_URL (an admin connection) and wrk on PATH", file=sys.stderr)
        return 2
    url = asyncio.run(build(admin, args.size))
    print(f"{args.size} servers, {args.clients} connections, {args.seconds:g} s each, {os.cpu_count()} cores")
    redis = RedisProcess(_free_port()).start()
    try:
        for answers in ("searched", "cached"):
            print(f"{answers}:")
            figures: dict[tuple[str, str], dict[str, float]] = {}
            with _replicas(1, url, redis, answers == "cached") as one:
                pids = [r.proc.pid for r in one if r.proc]
                for kind in ("rest", "mcp"):
                    figures["one", kind] = _run(
                        "one replica, direct",
                        kind,
                        one[0].base_url,
                        answers,
                        args,
                        functools.partial(_split, pids, redis.proc.pid if redis.proc else 0),
                    )
            with _replicas(2, url, redis, answers == "cached") as two, tempfile.TemporaryDirectory() as root:
                nginx = Nginx(
                    Path(root),
                    [f"127.0.0.1:{r.port}" for r in two],
                    _free_port(),
                    _free_port(),
                    adjust=_lift_limits,
                ).start()
                pids = [r.proc.pid for r in two if r.proc]
                os.environ["SSL_CERT_FILE"] = nginx.ca  # for the checks bench/discover.py makes with httpx
                try:
                    for kind in ("rest", "mcp"):
                        figures["two", kind] = _run(
                            "two replicas, nginx",
                            kind,
                            nginx.base_url,
                            answers,
                            args,
                            functools.partial(_split, pids, redis.proc.pid if redis.proc else 0),
                        )
                finally:
                    nginx.stop()
                    del os.environ["SSL_CERT_FILE"]  # the replicas started next must not inherit it
            for kind in ("rest", "mcp"):
                ratio = figures["two", kind]["rps"] / figures["one", kind]["rps"]
                print(f"  ratio two/one {kind:<5} {ratio:.2f}x")
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
