"""What the pages for people cost beside the REST answers they are built from.

    .venv/bin/mcplookup import tests/data/registry-seed-2025-05-16.json   # once
    .venv/bin/mcplookup serve &
    .venv/bin/python bench/pages.py [--url http://127.0.0.1:8000] [--requests 300]

One client, requests one after another (latency, not throughput): each page beside the REST route that
makes the same service calls, with the median, the 95th percentile and the page/REST ratio of medians.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

QUERY = "send an email from my gmail"
SERVER = "io.github.gongrzhe/gmail-mcp-server"
PAIRS = [
    ("search", f"/?q={QUERY.replace(' ', '+')}", f"/api/v1/discover?q={QUERY.replace(' ', '+')}"),
    ("server", f"/servers/{SERVER}", f"/api/v1/servers/{SERVER}"),
    ("stats", "/stats", "/api/v1/stats"),
]


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    for _ in range(20):  # warm the answer cache and the connections
        client.get(path).raise_for_status()
    times = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)], size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=30) as client:
        print(f"{'what':8} {'page median':>12} {'p95':>8} {'REST median':>12} {'p95':>8} {'ratio':>6}  bytes")
        for label, page, rest in PAIRS:
            page_median, page_p95, page_size = measure(client, page, args.requests)
            rest_median, rest_p95, rest_size = measure(client, rest, args.requests)
            print(
                f"{label:8} {page_median:9.2f} ms {page_p95:5.2f} ms {rest_median:9.2f} ms {rest_p95:5.2f} ms"
                f" {page_median / rest_median:6.2f}  {page_size} / {rest_size}"
            )


if __name__ == "__main__":
    main()
