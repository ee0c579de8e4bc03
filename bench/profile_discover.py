"""Where one server process spends a discovery answer's time: py-spy over a wrk run, summed by part.

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres python bench/profile_discover.py
        [--size 471] [--answers cached|searched] [--transport rest|mcp] [--seconds 15] [--raw FILE]

bench/discover.py's server (one process, scheduler off, the discovery rate limit raised) on its bench
database of `size` rows, wrk with 16 connections cycling 16 questions, and `py-spy record` (pip install
py-spy) sampling the server throughout. Each sample is counted once for every part its stack passes
through (so the parts nest, like a profile's inclusive times), as a share of the samples in which the
process was busy. py-spy's sampling slows the process it samples: only the shares mean anything.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from discover import ASKED, build, load_wrk, serve  # noqa: E402

# Part of an answer -> a function (file:name, as py-spy writes a frame) whose samples it counts.
PARTS = {
    "uvicorn's write to the socket (send)": "send (uvicorn/protocols/http/httptools_impl.py",
    "ObserveMiddleware": "__call__ (mcplookup_mcp/app.py",
    "ClientAddressMiddleware": "__call__ (mcplookup_mcp/core/client_address.py",
    "the REST route (discover)": "discover (mcplookup_mcp/transports/rest.py",
    "the MCP direct path": "__call__ (mcplookup_mcp/transports/mcp_fast_path.py",
    "DiscoveryService.discover": "discover (mcplookup_mcp/services/discovery.py",
    "  plan(): arguments and fingerprint": "plan (mcplookup_mcp/services/discovery.py",
    "  the answer cache": "answer (mcplookup_mcp/services/answer_cache.py",
    "  _search: the ranked statement's round trip": "_search (mcplookup_mcp/services/discovery.py",
    "  psycopg: execute and fetch": "execute (psycopg/cursor_async.py",
    "  _result: rows to the answer's models": "_result (mcplookup_mcp/services/discovery.py",
    "  server_fields": "server_fields (mcplookup_mcp/services/service.py",
    "encoding the answer (encoded_as)": "encoded_as (mcplookup_mcp/core/models.py",
    "the analytics writer (background)": "flush (mcplookup_mcp/services/analytics.py",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=471)
    parser.add_argument("--database-prefix", default="mcpl_bench")
    parser.add_argument("--answers", choices=["cached", "searched"], default="cached")
    parser.add_argument("--transport", choices=["rest", "mcp"], default="rest")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--raw", help="also keep py-spy's collapsed stacks in this file")
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not admin or not Path(spy).exists():
        print("needs DATABASE_URL (an admin connection) and py-spy (pip install py-spy)")
        return 2
    url = asyncio.run(build(admin, args.size, args.database_prefix))
    env = {"MCPLOOKUP_DISCOVER_CACHE_SECONDS": "0"} if args.answers == "searched" else {}
    proc, base = serve(url, 1, env | {"MCPLOOKUP_EMBEDDING_MODEL": ""})
    raw = args.raw or tempfile.mktemp(suffix=".txt")
    try:
        asked = ASKED["searched"][:16]
        load_wrk(args.transport, base, 16, 2, asked)  # warm: the cache holds every answer from here
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--output",
                raw,
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds) + 2),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        figures = load_wrk(args.transport, base, 16, args.seconds, asked, proc.pid, url)
        recorder.wait(timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    counts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = 0
    for line in Path(raw).read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        # An idle event loop waits in select/epoll: those samples are no answer's time.
        if "select (selectors.py" in stack:
            continue
        busy += int(samples)
        own[stack.rsplit(";", 1)[-1].strip()] += int(samples)
        for part, frame in PARTS.items():
            if frame in stack:
                counts[part] += int(samples)
    print(
        f"{args.size:,} servers, {args.answers} {args.transport}: {figures['rps']:.0f} req/s while sampled"
        f"{figures.get('cpu', '')}; {busy} busy samples"
    )
    for part in PARTS:
        print(f"  {100 * counts[part] / max(busy, 1):5.1f} %  {part}")
    print("  functions with the most samples of their own:")
    for frame, n in own.most_common(12):
        print(f"  {100 * n / max(busy, 1):5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
