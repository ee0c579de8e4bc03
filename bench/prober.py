"""Prober cost: CPU milliseconds per probe, probes per second, and RSS over many probes.

A lightweight MCP target (a hand-written JSON-RPC endpoint under uvicorn, in another process so its CPU
is not counted) listens on 127.0.0.2; the prober reaches it through the SSRF guard with 127.0.0.2/32
allowlisted, exactly as the scheduler would (one full handshake per probe: initialize,
notifications/initialized, tools/list, a fresh connection each time). By default the URL holds the
address, so no DNS lookup is made; --dns resolves a name through the loopback DNS server instead (that
server runs in this process, so its CPU is counted too).

    python bench/prober.py                 # 10,000 probes, 10 at a time
    python bench/prober.py --probes 2000 --concurrency 1
"""

from __future__ import annotations

import argparse
import array
import asyncio
import ipaddress
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_IP = "127.0.0.2"
# The checkout's package, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(port: int) -> None:
    import uvicorn

    tools = [
        {"name": "add", "description": "Add two integers.", "inputSchema": {"type": "object"}},
        {"name": "echo", "description": "Echo the text back.", "inputSchema": {"type": "object"}},
    ]

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        request = json.loads(body)
        if "id" not in request:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if request["method"] == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-target", "version": "1"},
            }
        else:
            result = {"tools": tools}
        payload = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host=TARGET_IP, port=port, log_level="warning", access_log=False)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((TARGET_IP, 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex((TARGET_IP, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the target did not start")


async def _bench(port: int, probes: int, concurrency: int, use_dns: bool) -> None:
    from mcplookup_mcp.probe.dns_resolver import make_resolver
    from mcplookup_mcp.probe.health import probe
    from mcplookup_mcp.probe.ssrf import ProbePolicy

    dns_server = None
    if use_dns:
        from mcplookup_mcp.probe.devdns import ThreadedDnsServer

        dns_server = ThreadedDnsServer()
        dns_server.start()
        dns_server.set_a("mcp.bench.test", TARGET_IP)
        resolver = make_resolver(dns_server.nameservers, timeout=2.0)
        url = f"http://mcp.bench.test:{port}/mcp"
    else:
        resolver = make_resolver([], timeout=2.0)
        url = f"http://{TARGET_IP}:{port}/mcp"
    policy = ProbePolicy(
        allow_cidrs=(ipaddress.ip_network(f"{TARGET_IP}/32"),),
        allowed_ports=frozenset({port}),
        allow_plain_http=True,
    )

    async def one() -> tuple[str, float | None]:
        result = await probe(url, transport="streamable-http", resolver=resolver, policy=policy, timeout=10.0)
        return result.status, result.latency_ms

    # Warm-up: imports, SSL context, first connections.
    for _ in range(50):
        await one()

    statuses: dict[str, int] = {}
    latencies = array.array("d")  # 8 bytes a probe: the benchmark's own memory stays negligible
    rss: list[tuple[int, int]] = [(0, _rss_kib())]
    gate = asyncio.Semaphore(concurrency)
    step = max(probes // 10, 1)
    done = 0

    async def run_one() -> None:
        nonlocal done
        async with gate:
            status, latency = await one()
        statuses[status] = statuses.get(status, 0) + 1
        if latency is not None:
            latencies.append(latency)
        done += 1
        if done % step == 0:
            rss.append((done, _rss_kib()))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    # Created in chunks so that 10k pending tasks do not inflate the memory being measured.
    for start in range(0, probes, 1000):
        await asyncio.gather(*(run_one() for _ in range(min(1000, probes - start))))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if dns_server is not None:
        dns_server.stop()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, dns={'yes' if use_dns else 'no'}")
    print(f"probes {probes}, concurrency {concurrency}, statuses {statuses}")
    print(f"prober CPU per probe: {cpu * 1000 / probes:.2f} ms")
    print(f"throughput: {probes / wall:.0f} probes/s (wall {wall:.1f} s)")
    print(
        f"initialize latency: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {statistics.quantiles(latencies, n=100)[98]:.1f} ms"
    )
    print("RSS (KiB) after N probes: " + ", ".join(f"{n}: {kib}" for n, kib in rss))
    print(f"RSS growth from first to last sample: {rss[-1][1] - rss[1][1]} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--dns", action="store_true", help="resolve a name through the loopback DNS server")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    port = _free_port()
    target = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        _wait_for(port)
        asyncio.run(_bench(port, args.probes, args.concurrency, args.dns))
    finally:
        target.terminate()
        target.wait(10)


if __name__ == "__main__":
    main()
