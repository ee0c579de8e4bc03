"""The image without Docker: the wheel is built, installed into a fresh venv, and the Dockerfile's own
ENTRYPOINT, CMD and HEALTHCHECK run as the container would run them (tini as PID-1 stand-in, the
image's ENV, deploy/production.env), against the local PostgreSQL and Redis, until /ready answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis
from conftest import create_database, drop_database, free_port
from deploy_files import REQUIRED, ROOT, compose, env_file, healthcheck, image_command, image_env
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.slow


def _url(conninfo: str) -> str:
    parts = conninfo_to_dict(conninfo)
    user = quote(str(parts.get("user") or "postgres"))
    password = f":{quote(str(parts['password']))}" if parts.get("password") else ""
    host, port = parts.get("host") or "127.0.0.1", parts.get("port") or "5432"
    if str(host).startswith("/"):
        pytest.skip("the image's DATABASE_URL is a TCP URL; the test database is on a Unix socket")
    return f"postgresql://{user}{password}@{host}:{port}/{quote(str(parts['dbname']))}"


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the checkout and installed into a new venv, as the image's stages do."""
    work = tmp_path_factory.mktemp("image")
    wheels = work / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("mcplookup_mcp-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return venv


@pytest.fixture
def container_env(
    fresh_venv: Path, pg_admin_url: str, redis_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    name = f"mcpl_image_{os.getpid()}"
    database = create_database(pg_admin_url, name)  # empty: the migrate command must build it
    env = {
        # What the container has: the image's ENV, the env_file compose gives it, the secrets.
        **image_env(),
        **env_file(ROOT / compose()["x-app"]["env_file"][0]),
        "DATABASE_URL": _url(database),
        "REDIS_URL": redis_url,
        "MCPLOOKUP_REDIS_PREFIX": f"mcpl-image-{os.getpid()}",
        "MCPLOOKUP_CURSOR_SECRET": "image-test-cursor-secret",
        # Differences a test on a shared machine needs: loopback only, a free port, its own home.
        "MCPLOOKUP_HOST": "127.0.0.1",
        "MCPLOOKUP_DNS_NAMESERVERS": f"127.0.0.1:{free_port()}",  # no lookup leaves the machine
        "PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MCPLOOKUP_DATA_DIR": str(tmp_path / "data"),
    }
    env["PORT"] = env["METRICS_PORT"] = str(free_port())
    yield env
    drop_database(pg_admin_url, name)


def _entrypoint() -> list[str]:
    entrypoint, _cmd = image_command()
    if not Path(entrypoint[0]).exists():
        message = f"{entrypoint[0]} is missing: apt-get install tini"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return entrypoint


def test_the_image_commands_migrate_serve_and_pass_their_healthcheck(container_env: dict[str, str]) -> None:
    entrypoint = _entrypoint()
    _, cmd = image_command()
    migrate = compose()["services"]["migrate"]["command"]

    first = subprocess.run(
        [*entrypoint, *migrate], env=container_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001_initial")
    again = subprocess.run(
        [*entrypoint, *migrate], env=container_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0 and again.stdout.strip() == "the database is up to date"

    port = container_env["PORT"]
    _options, check = healthcheck()
    server = subprocess.Popen(
        [*entrypoint, *cmd], env=container_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert server.poll() is None, server.communicate()[0][-3000:]
        assert ready is not None and ready.status_code == 200 and ready.json() == {"status": "ready"}

        # The HEALTHCHECK as Docker runs it, in the container's environment: it finds the server on PORT.
        ok = subprocess.run(check, env=container_env, capture_output=True, text=True, timeout=10, check=False)
        assert ok.returncode == 0, ok.stderr
        # compose's own healthcheck for the replicas (readiness, same PORT rule) passes too.
        compose_check = compose()["services"]["app"]["healthcheck"]["test"]
        assert compose_check[0] == "CMD"
        ready_check = subprocess.run(
            compose_check[1:], env=container_env, capture_output=True, text=True, timeout=10, check=False
        )
        assert ready_check.returncode == 0, ready_check.stderr
        elsewhere = container_env | {"PORT": str(free_port())}
        failed = subprocess.run(check, env=elsewhere, capture_output=True, text=True, timeout=10, check=False)
        assert failed.returncode != 0

        # The limits are counted in the local Redis, under this deployment's prefix (the register call is
        # refused for its domain after it is counted, so nothing is looked up).
        refused = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/register", json={"domain": "not a domain"}, timeout=5
        )
        assert refused.status_code == 422
        prefix = container_env["MCPLOOKUP_REDIS_PREFIX"]
        client = redis.Redis.from_url(container_env["REDIS_URL"])
        try:
            keys = client.keys(f"{prefix}:rl:register:*")
            assert len(keys) == 1 and int(client.get(keys[0]) or 0) == 1
            client.delete(*keys)
        finally:
            client.close()

        # What the image's production settings switch on is live: metrics, the public URL in OpenAPI.
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        document = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5).json()
        # compose passes MCPLOOKUP_PUBLIC_URL from .env; without it the base is relative.
        assert document["servers"][0]["url"] == container_env.get("MCPLOOKUP_PUBLIC_URL", "/")

        # docker stop sends SIGTERM to PID 1; tini passes it on and the server shuts down cleanly (uvicorn
        # then re-raises the signal, so the exit status is 128 + SIGTERM, as `docker stop` reports it).
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
        assert server.returncode in (0, 128 + signal.SIGTERM), output[-3000:]
        assert "Application shutdown complete" in output, output[-3000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
