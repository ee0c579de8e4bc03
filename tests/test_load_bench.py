"""bench/load.py run small: 20 clients for 5 s over REST and MCP against `mcplookup serve --workers 2`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
# Loaded from its path: a module named `load` elsewhere on the path would shadow it.
_spec = importlib.util.spec_from_file_location(
    "bench_load", Path(__file__).resolve().parents[1] / "bench" / "load.py"
)
assert _spec and _spec.loader
load = importlib.util.module_from_spec(_spec)
sys.modules["bench_load"] = load
_spec.loader.exec_module(load)

pytestmark = pytest.mark.slow

# Registration is 1% of the bench's mix; here it is raised so that a slow machine still makes several
# claims in 5 s, and every kind of call is certain to run.
SMOKE_MIX = (("discover", 70), ("get_server", 10), ("health", 10), ("register", 10))


def test_twenty_clients_get_answers_and_no_server_error(pg_admin_url: str, redis_url: str) -> None:
    figures = load.run(pg_admin_url, redis_url, clients=20, seconds=5, warmup=1, workers=2, mix=SMOKE_MIX)
    print("\n".join(load.report(figures, workers=2)))

    assert figures.total("5xx") == 0, figures.samples
    assert figures.total("transport") == 0, figures.samples
    assert figures.total("failed") == 0, figures.samples
    assert load.exit_code(figures) == 0
    for op in ("discover", "get_server", "health", "register"):
        assert figures.outcomes[op]["ok"] > 0, (op, dict(figures.outcomes[op]))
    # No TXT record is published: every verify is refused, as a claim without one must be.
    assert figures.outcomes["verify"]["expected_refusal"] > 0
    assert figures.outcomes["verify"]["ok"] == 0
    assert set(figures.rss) == {"ready", "start", "middle", "end"}
