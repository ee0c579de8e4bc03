"""`mcplookup` as a child process for the tests: `serve` started, waited for until ready, stopped by SIGTERM;
other commands run to their end; the database URL and environment they are given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parents[1]


def start_serve(data_dir: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "MCPLOOKUP_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "MCPLOOKUP_ENV": "development",
        "MCPLOOKUP_ALLOW_HTTP_ENDPOINTS": "true",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mcplookup_mcp.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ready(proc: subprocess.Popen[bytes], base: str) -> None:
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


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def as_url(conninfo: str) -> str:
    parts = conninfo_to_dict(conninfo)
    query = urlencode({k: v for k, v in parts.items() if k in ("host", "port", "user", "password")})
    return f"postgresql:///{parts['dbname']}?{query}"


def database_url(db_url: str, password: str | None = None) -> str:
    """db_url as a postgresql:// URL (what DATABASE_URL takes), with `password` written into it."""
    parts = conninfo_to_dict(db_url)
    query = {k: v for k, v in parts.items() if k in ("host", "port", "user")}
    if password:
        query["password"] = password
    return f"postgresql:///{parts['dbname']}?{urlencode(query)}"


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MCPLOOKUP_DATA_DIR")
    }
    return env | {"PYTHONPATH": str(ROOT), "MCPLOOKUP_SCHEDULER": "false"} | extra


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
