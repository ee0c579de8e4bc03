"""`mcplookup serve` with no DATABASE_URL: embedded PostgreSQL, /ready, data kept across a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import free_port

LISTING = {
    "domain": "persist.test",
    "endpoint": "http://mcp.persist.test/mcp",
    "description": "Remembers everything across restarts",
}


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "MCPLOOKUP_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "MCPLOOKUP_ENV": "development",
        "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "true",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(proc: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_uses_embedded_postgres_and_keeps_data(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        _wait_ready(proc, base)
        response = httpx.post(f"{base}/api/v1/register", json=LISTING, timeout=10)
        assert response.status_code == 202, response.text
    finally:
        _stop(proc)
    assert (tmp_path / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    # Stopped (SIGTERM, as a service manager stops it), the server took its embedded database down
    # with it: PostgreSQL removes postmaster.pid when it shuts down.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()

    proc = _start(tmp_path, port)
    try:
        _wait_ready(proc, base)
        found = httpx.get(
            f"{base}/api/v1/discover", params={"q": "remembers", "include_pending": "true"}, timeout=10
        ).json()
        assert [s["name"] for s in found["servers"]] == ["test.persist/mcp"]
    finally:
        _stop(proc)
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
