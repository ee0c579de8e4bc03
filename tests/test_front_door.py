"""compose's front door, run for real: Debian's nginx with the shipped nginx/mcplookup.conf and the
certificate compose supplies (nginx/tls-init.sh), two `mcplookup serve` replicas behind it; nginx's compose
healthcheck and the post-deployment checklist run against it, over HTTPS and against the HTTP port that
only redirects."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import create_database, drop_database, free_port
from deploy_files import ROOT, compose, run, tool
from stack import NGINX, NGINX_CONF, TLS_INIT, Nginx, Replica, replica_env

CHECKLIST = ROOT / "deploy" / "post-deploy-check.sh"


def mounts() -> dict[str, str]:
    """nginx's volumes in compose.yaml: where in the container -> what on the host."""
    found: dict[str, str] = {}
    for volume in compose()["services"]["nginx"]["volumes"]:
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def test_compose_supplies_the_certificate_where_the_config_loads_it() -> None:
    conf = NGINX_CONF.read_text()
    paths = re.findall(r"^\s*ssl_certificate(?:_key)? (\S+);", conf, re.MULTILINE)
    assert paths == ["/etc/nginx/tls/mcplookup.crt", "/etc/nginx/tls/mcplookup.key"]
    volumes = mounts()
    # The directory the config reads is mounted from the checkout's nginx/tls (where an operator puts the
    # real certificate), and the script that fills it runs from the image's entrypoint directory.
    assert volumes["/etc/nginx/tls"] == "./nginx/tls"
    assert (ROOT / "nginx" / "tls").is_dir()
    (script,) = [t for t in volumes if t.startswith("/docker-entrypoint.d/")]
    assert script.endswith(".sh") and volumes[script] == "./nginx/tls-init.sh"
    assert volumes["/etc/nginx/conf.d/default.conf"] == "./nginx/mcplookup.conf"
    # The image's entrypoint runs only executable scripts: the checkout keeps the mode.
    assert os.access(TLS_INIT, os.X_OK)
    mode = run("git", "ls-files", "--stage", "nginx/tls-init.sh").stdout.split()[0]
    assert mode == "100755"


def test_compose_publishes_https_and_the_redirect() -> None:
    ports = [p.rsplit(":", 1)[1] for p in compose()["services"]["nginx"]["ports"]]
    assert sorted(ports) == ["443", "80"]
    assert "return 308 https://$host$request_uri;" in NGINX_CONF.read_text()


def test_the_init_script_makes_a_development_certificate_once_and_keeps_a_supplied_one(
    tmp_path: Path,
) -> None:
    def init(directory: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(TLS_INIT)],
            env={**os.environ, "TLS_DIR": str(directory)},
            capture_output=True,
            text=True,
        )

    made = init(tmp_path / "dev")
    assert made.returncode == 0, made.stderr
    assert "self-signed development certificate" in made.stdout
    crt, key = tmp_path / "dev" / "mcplookup.crt", tmp_path / "dev" / "mcplookup.key"
    names = run("openssl", "x509", "-in", str(crt), "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names
    assert key.stat().st_mode & 0o077 == 0
    first = crt.read_bytes()
    again = init(tmp_path / "dev")
    assert again.returncode == 0 and "using the certificate" in again.stdout
    assert crt.read_bytes() == first
    # A supplied pair is used as it is.
    supplied = tmp_path / "real"
    supplied.mkdir()
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=mcplookup.example.test",
        "-keyout", str(supplied / "mcplookup.key"), "-out", str(supplied / "mcplookup.crt"),
    )  # fmt: skip
    real = (supplied / "mcplookup.crt").read_bytes()
    assert init(supplied).returncode == 0
    assert (supplied / "mcplookup.crt").read_bytes() == real
    # Half a pair is an operator's mistake: said, not papered over.
    (supplied / "mcplookup.key").unlink()
    half = init(supplied)
    assert half.returncode == 1 and "only one of" in half.stderr


def test_shellcheck_finds_nothing_in_the_front_door_scripts() -> None:
    result = run(tool("shellcheck"), str(TLS_INIT), str(CHECKLIST))
    assert result.returncode == 0, result.stdout + result.stderr


# the running front door -------------------------------------------------------------------------------


@dataclass
class FrontDoor:
    nginx: Nginx
    replicas: list[Replica]

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.nginx.http_port}"


@pytest.fixture(scope="module")
def door(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FrontDoor]:
    tool("curl")  # the healthcheck and the checklist speak curl
    name = f"mcpl_door_{os.getpid()}"
    url = create_database(pg_admin_url, name, template=template_db)
    http_port, https_port = free_port(), free_port()
    env = replica_env(url, None, MCPLOOKUP_PUBLIC_URL=f"https://127.0.0.1:{https_port}")
    replicas = [Replica(free_port(), env).start() for _ in range(2)]
    nginx: Nginx | None = None
    try:
        for replica in replicas:
            replica.wait_ready()
        nginx = Nginx(
            tmp_path_factory.mktemp("door"), [f"127.0.0.1:{r.port}" for r in replicas], http_port, https_port
        ).start()
        yield FrontDoor(nginx, replicas)
    finally:
        if nginx is not None:
            nginx.stop()
            print(nginx.error_log()[-3000:])
        for replica in replicas:
            replica.stop()
        drop_database(pg_admin_url, name)


@pytest.mark.slow
def test_nginx_accepts_the_shipped_config_with_the_supplied_certificate(door: FrontDoor) -> None:
    root = door.nginx.root
    checked = run(NGINX, "-t", "-p", str(root), "-c", str(root / "nginx.conf"))
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.mark.slow
def test_https_reaches_the_app_and_metrics_are_refused(door: FrontDoor) -> None:
    with httpx.Client(base_url=door.nginx.base_url, verify=door.nginx.tls(), timeout=20) as https:
        health = https.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.headers["strict-transport-security"].startswith("max-age=")
        assert https.get("/ready").json() == {"status": "ready"}
        found = https.get("/api/v1/discover", params={"q": "email"})
        assert found.status_code == 200 and isinstance(found.json()["servers"], list)
        metrics = https.get("/metrics")
        assert metrics.status_code == 403
        assert metrics.headers["content-type"] == "application/problem+json"
        assert metrics.json()["status"] == 403 and "# HELP" not in metrics.text
    with httpx.Client(base_url=door.http_base, timeout=20) as http:
        moved = http.get("/api/v1/discover?q=email")
        assert moved.status_code == 308
        assert moved.headers["location"] == f"{door.nginx.base_url}/api/v1/discover?q=email"
        assert http.get("/metrics").status_code == 403


def healthcheck(base: str) -> subprocess.CompletedProcess[str]:
    """compose's nginx healthcheck, as the container's shell runs it, aimed at `base` instead of
    https://127.0.0.1 (compose turns `$$` into `$`)."""
    kind, command = compose()["services"]["nginx"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "https://127.0.0.1/health" in command
    command = command.replace("$$", "$").replace("https://127.0.0.1/", f"{base}/")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


@pytest.mark.slow
def test_the_compose_healthcheck_passes_on_https_and_fails_on_a_redirect(door: FrontDoor) -> None:
    assert healthcheck(door.nginx.base_url).returncode == 0
    assert healthcheck(door.http_base).returncode != 0
    # What it used to be, for the record: curl -fsS exits 0 on the redirect page.
    old = subprocess.run(["curl", "-fsS", "-o", "/dev/null", f"{door.http_base}/health"], timeout=30)
    assert old.returncode == 0


@pytest.mark.slow
def test_the_post_deployment_checklist_passes_over_https(door: FrontDoor) -> None:
    done = run("bash", str(CHECKLIST), door.nginx.base_url, door.nginx.ca)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok   liveness",
        "ok   readiness",
        "ok   openapi",
        "ok   mcp initialize",
        "ok   discovery",
        "ok   metrics not public",
    ]
    assert lines[-1] == "every check passed"


@pytest.mark.slow
def test_the_post_deployment_checklist_fails_on_a_redirect(door: FrontDoor) -> None:
    done = run("bash", str(CHECKLIST), door.http_base)
    assert done.returncode == 1, done.stdout
    assert (
        f"FAIL liveness: answered 308, expected 200 (a redirect to {door.nginx.base_url}/health)"
        in done.stdout.splitlines()
    )
    # Every check but the refused /metrics (403 over HTTP too) fails on the redirect.
    assert done.stdout.count("FAIL") == 5
    assert shlex.split(done.stdout.splitlines()[-1]) == ["5", "check(s)", "failed"]
