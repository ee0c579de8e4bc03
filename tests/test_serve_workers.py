"""`mcplookup serve --workers N`: processes sharing one port, each with its own answer cache, whose
figures /metrics pools whichever worker answers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from conftest import free_port
from listing_support import add
from serve_support import as_url, stop_serve, wait_ready

# Starts the server as worker processes and waits for them.
pytestmark = pytest.mark.slow

DISCOVER = "/api/v1/discover?" + urlencode({"q": "send email", "limit": 5})


def served(metrics: str, path: str) -> float:
    pattern = rf'^http_requests_total\{{method="GET",path="{re.escape(path)}",status="200"\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, metrics, re.MULTILINE))


async def _ask(base: str, times: int) -> list[list[str]]:
    async def one(http: httpx.AsyncClient) -> list[str]:
        response = await http.get(DISCOVER)
        assert response.status_code == 200, response.text
        return [server["name"] for server in response.json()["servers"]]

    # Fresh connections in parallel, so the kernel hands them to both workers.
    async def fresh() -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            return await one(http)

    return list(await asyncio.gather(*(fresh() for _ in range(times))))


@pytest.mark.parametrize("metrics_port", [False, True], ids=["metrics-on-the-app-port", "METRICS_PORT"])
def test_two_workers_share_the_port_the_cache_generation_and_the_metrics(
    db_url: str, tmp_path: Path, metrics_port: bool
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    scrape_port = free_port() if metrics_port else port
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "METRICS_PORT": str(scrape_port),
        "DATABASE_URL": as_url(db_url),
        "PORT": str(port),
        "MCPLOOKUP_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        add(db_url, "io.example/mailer", description="Send email from your mailbox")
        # /ready answered from one worker; the other may still be starting. Ask until both have served.
        asked, deadline = 0, time.monotonic() + 30
        while True:
            first = asyncio.run(_ask(base, 24))
            asked += 24
            assert all(names == ["io.example/mailer"] for names in first)
            files = [f.name for f in metrics_dir.iterdir()]
            workers = {m.group(1) for name in files if (m := re.match(r"counter_(\d+)\.db", name))}
            if len(workers) >= 2:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{asked} requests reached {len(workers)} worker(s): {sorted(files)}")

        # A listing written after both workers cached the answer is in every answer at once.
        add(db_url, "io.example/mail-relay", description="Send email through a relay")
        second = asyncio.run(_ask(base, 24))
        asked += 24
        assert all(sorted(names) == ["io.example/mail-relay", "io.example/mailer"] for names in second)

        # Every scrape, whichever worker answers it, counts the requests both workers served. On its
        # own port every worker listens too, and the app's port serves no /metrics.
        with httpx.Client(base_url=base, timeout=20) as http:
            if metrics_port:
                assert http.get("/metrics").status_code == 404
            for _ in range(4):
                with httpx.Client(base_url=f"http://127.0.0.1:{scrape_port}", timeout=20) as fresh:
                    scraped = fresh.get("/metrics")
                    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith(
                        "text/plain"
                    )
                    text = scraped.text
                    if metrics_port:
                        assert fresh.get("/api/v1/discover").status_code == 404
                assert served(text, "/api/v1/discover") == asked
                assert re.search(r"^total_registered_servers 2\.0$", text, re.MULTILINE), text[:2000]
            assert http.get("/health").status_code == 200
    finally:
        stop_serve(proc)
    assert proc.returncode == 0, proc.stdout.read().decode() if proc.stdout else ""


def test_a_worker_count_below_one_is_refused(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve", "--workers", "0"],
        env=os.environ | {"DATABASE_URL": as_url(db_url), "MCPLOOKUP_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers" in done.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_metrics_port_binds_the_address_serve_binds(db_url: str, tmp_path: Path, workers: str) -> None:
    """`serve --host` wins over MCPLOOKUP_HOST for the app, and so it does for METRICS_PORT."""
    port, scrape_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "METRICS_PORT": str(scrape_port),
        "MCPLOOKUP_HOST": "127.0.0.1",
        "DATABASE_URL": as_url(db_url),
        "MCPLOOKUP_ENV": "test",
        "MCPLOOKUP_ALLOWED_HOSTS": "*",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "mcplookup_mcp.cli", "serve", "--host", "127.0.0.3"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", workers],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(proc, f"http://127.0.0.3:{port}")
        scraped = httpx.get(f"http://127.0.0.3:{scrape_port}/metrics", timeout=10)
        assert scraped.status_code == 200 and "http_requests_total" in scraped.text
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{scrape_port}/metrics", timeout=5)
        refused = httpx.post(f"http://127.0.0.3:{scrape_port}/metrics", timeout=10)
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    finally:
        stop_serve(proc)
    # One process re-raises the SIGTERM it stopped on (uvicorn); the parent of workers exits 0.
    assert proc.returncode in (0, -signal.SIGTERM), proc.stdout.read().decode() if proc.stdout else ""


def _serve(db_url: str, metrics_port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")} | {
        "METRICS_PORT": str(metrics_port),
        "DATABASE_URL": as_url(db_url),
        "PORT": str(free_port()),
        "MCPLOOKUP_ENV": "test",
        "MCPLOOKUP_SCHEDULER": "false",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _refused(proc: subprocess.Popen[bytes], metrics_port: int) -> str:
    out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 2, text
    assert f"METRICS_PORT={metrics_port}: another process already listens on 127.0.0.1:{metrics_port}" in text
    return text


def test_a_metrics_port_held_by_another_server_stops_the_start(db_url: str) -> None:
    """Two servers on one host with one METRICS_PORT (deploy/production.env's for both): the second is
    refused at start, whether the first runs workers or not, and the first's figures stay reachable."""
    metrics_port = free_port()
    first = _serve(db_url, metrics_port, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert first.poll() is None and time.monotonic() < deadline, "the first server did not start"
            time.sleep(0.2)
        _refused(_serve(db_url, metrics_port), metrics_port)
        _refused(_serve(db_url, metrics_port, "--workers", "2"), metrics_port)
        # Every scrape still reaches the first server's workers.
        for _ in range(6):
            assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
    finally:
        stop_serve(first)


def test_a_metrics_port_another_program_listens_on_stops_the_start(db_url: str) -> None:
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        _refused(_serve(db_url, port), port)
