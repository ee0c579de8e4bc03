"""The PostgreSQL servers the tests run keep working when another pytest run on the machine starts
(pytest then makes its shared temporary root, `pytest-of-<user>`, unreadable to every other user)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from conftest import postgres_dir
from stack import OwnPostgres


@contextmanager
def pytest_root_locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pytest-of-<user> at mode 0700, as another pytest run starting now leaves it."""
    # basetemp is pytest-of-<user>/pytest-N, one level deeper (popen-gwK) under pytest-xdist.
    base = tmp_path_factory.getbasetemp()
    root = next(p for p in base.parents if p.name.startswith("pytest-of-"))
    mode = root.stat().st_mode & 0o777
    root.chmod(0o700)
    try:
        yield root
    finally:
        root.chmod(mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does the embedded server run as another user")
def test_a_test_postgres_stops_and_starts_after_another_run_locks_pytests_root(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pgdata = postgres_dir("locked-root") / "pgdata"
    own = OwnPostgres.on(pgdata)
    own.start()
    try:
        with pytest_root_locked(tmp_path_factory) as root:
            assert root not in pgdata.parents
            # The server's own user still reaches its directory: pg_ctl stops and starts it, it answers.
            own.stop()
            assert not (pgdata / "postmaster.pid").exists()
            own.start()
            with psycopg.connect(own.url("postgres")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        if (pgdata / "postmaster.pid").exists():
            own.stop()
