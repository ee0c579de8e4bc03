"""What the ranked statement costs per question, from EXPLAIN ANALYZE, on the kept generic plan.

    DATABASE_URL=postgresql:///mcpl_bench_100000?host=127.0.0.1&user=postgres python bench/ranked_plan.py
        [--questions 16] [--rounds 5] [--nodes 12] [--against COMMIT]

For each question (bench/search_quality.py's, in bench/discover.py's order) the service's own parameters
are built (DiscoveryService.plan), the statement is prepared once and run on its generic plan, as
Repository.read(kept_plans=True) does, and EXPLAIN (ANALYZE) EXECUTE reports its execution time. Printed:
the mean and worst execution time over the questions (best of `rounds` per question), the planning time of
the first execution, and the plan nodes with the most time of their own, summed over the questions: where
a search's database time goes.

With `--against COMMIT` it compares instead: that commit's discover_ranked (from git) and this
checkout's, both prepared on one connection and run in turns, each question's best execution time of
`rounds` (EXPLAIN ANALYZE with TIMING OFF: the clock reads of every node cost more than some nodes). The
best of several is what a contended machine lets through unchanged. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search_quality import CASES  # noqa: E402

from mcplookup_mcp.core.settings import load_settings  # noqa: E402
from mcplookup_mcp.services.discovery import DiscoveryService  # noqa: E402
from mcplookup_mcp.store.sqlfiles import parse_queries, positional, queries  # noqa: E402


def _params(question: str) -> dict[str, Any]:
    service = DiscoveryService.__new__(DiscoveryService)
    service._cursor_key = b"k" * 32
    return service.plan({"query": question, "limit": 10}).params


def _seq_scans(node: dict[str, Any]) -> int:
    """Sequential scans of the tables the indexes serve (the plan must stay on them at any size)."""
    here = node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in (
        "mcp_servers",
        "search_postings",
    )
    return int(here) + sum(_seq_scans(child) for child in node.get("Plans", ()))


def _cte_times(node: dict[str, Any], out: dict[str, float]) -> None:
    """Each CTE's inclusive time (its subplan's root), by name."""
    name = node.get("Subplan Name") or ""
    if name.startswith("CTE "):
        out[name[4:]] = node.get("Actual Total Time", 0.0) * node.get("Actual Loops", 1)
    for child in node.get("Plans", ()):
        _cte_times(child, out)


def _self_times(node: dict[str, Any], out: dict[str, float], ctes: dict[str, float], seen: set[str]) -> float:
    """Adds each node's own time (its total less its children's, per loop times loops) to `out`. A CTE's
    rows are made while its first scan reads them: that scan's total holds the CTE's, counted once."""
    total = node.get("Actual Total Time", 0.0) * node.get("Actual Loops", 1)
    children = sum(_self_times(child, out, ctes, seen) for child in node.get("Plans", ()))
    label = node["Node Type"]
    if node.get("Relation Name"):
        label += f" on {node['Relation Name']}"
    if node.get("Index Name"):
        label += f" ({node['Index Name']})"
    if node.get("Node Type") == "CTE Scan" and node.get("CTE Name") not in seen:
        seen.add(node["CTE Name"])
        children += ctes.get(node["CTE Name"], 0.0)
    if node.get("Subplan Name"):
        label += f" [{node['Subplan Name']}]"
        if node["Subplan Name"].startswith("CTE "):
            total = 0.0  # counted in the scan that read it
    elif node.get("CTE Name"):
        label += f" [{node['CTE Name']}]"
    elif node.get("Function Name"):
        label += f" [{node['Function Name']}]"
    out[label] += max(total - children, 0.0)
    return total


def _compare(url: str, against: str, questions: list[str], rounds: int) -> None:
    """Each question's best execution time, `against`'s statement and this checkout's, run in turns."""
    old = subprocess.run(
        ["git", "show", f"{against}:sql/queries/discovery.sql"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    texts = {
        against: parse_queries(old, "discovery.sql")["discover_ranked"],
        "now": queries()["discover_ranked"],
    }
    best: dict[str, dict[str, float]] = {label: {} for label in texts}
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM mcp_servers").fetchone()
        conn.execute("SET plan_cache_mode = force_generic_plan")
        names: dict[str, tuple[str, ...]] = {}
        for i, (label, text) in enumerate(texts.items()):
            prepared, names[label] = positional(text)
            conn.execute(f"PREPARE ranked_{i} AS ".encode() + prepared)
        cur = psycopg.ClientCursor(conn)
        for r in range(rounds):
            order = list(enumerate(texts)) if r % 2 == 0 else list(enumerate(texts))[::-1]
            for i, label in order:
                for question in questions:
                    params = _params(question)
                    values = [params[name] for name in names[label]]
                    cur.execute(
                        f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE ranked_{i}("
                        + ", ".join(["%s"] * len(values))
                        + ")",
                        values,
                    )
                    row = cur.fetchone()
                    assert row is not None
                    ms = row[0][0]["Execution Time"]
                    best[label][question] = min(best[label].get(question, ms), ms)
    for label, times in best.items():
        print(
            f"{rows[0] if rows else 0:,} servers, {label}: best of {rounds} a question, mean "
            f"{statistics.mean(times.values()):.3f} ms, median {statistics.median(times.values()):.3f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--against", help="a commit whose discover_ranked to compare with this checkout's")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("set DATABASE_URL to the bench database")
        return 2
    os.environ.setdefault("MCPLOOKUP_ENV", "development")
    load_settings()
    prepared, names = positional(queries()["discover_ranked"])
    questions = [q for q, _ in CASES][: args.questions]
    if args.against:
        _compare(url, args.against, questions, args.rounds)
        return 0
    executions: list[float] = []
    planning: list[float] = []
    nodes: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    scanned = 0
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM mcp_servers").fetchone()
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(b"PREPARE ranked AS " + prepared)
        cur = psycopg.ClientCursor(conn)
        explain = "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ranked(" + ", ".join(["%s"] * len(names)) + ")"
        for question in questions:
            params = _params(question)
            values = [params[name] for name in names]
            best: tuple[float, Any] | None = None
            for _ in range(args.rounds):
                cur.execute(explain, values)
                row = cur.fetchone()
                assert row is not None
                plan = row[0][0] if isinstance(row[0], list) else json.loads(row[0])[0]
                planning.append(plan.get("Planning Time", 0.0))
                if best is None or plan["Execution Time"] < best[0]:
                    best = (plan["Execution Time"], plan)
            assert best is not None
            executions.append(best[0])
            scanned += _seq_scans(best[1]["Plan"]) > 0
            ctes: dict[str, float] = {}
            _cte_times(best[1]["Plan"], ctes)
            for name, ms in ctes.items():
                inclusive[name] += ms
            _self_times(best[1]["Plan"], nodes, ctes, set())
    print(
        f"{rows[0] if rows else 0:,} servers, {len(questions)} questions, best of {args.rounds}: execution "
        f"mean {statistics.mean(executions):.3f} ms, median {statistics.median(executions):.3f} ms, "
        f"worst {max(executions):.3f} ms; planning (kept plan) mean {statistics.mean(planning):.3f} ms"
    )
    print(f"questions whose kept plan scans mcp_servers or search_postings sequentially: {scanned}")
    slowest = sorted(zip(executions, questions, strict=True), reverse=True)[:3]
    print("slowest: " + "; ".join(f"{q!r} {ms:.3f} ms" for ms, q in slowest))
    print("steps (CTEs) with what they read, a question:")
    for name, ms in sorted(inclusive.items(), key=lambda item: -item[1]):
        print(f"  {ms / len(questions):8.3f} ms  {name}")
    spent = sum(nodes.values()) or 1.0
    print("plan nodes by their own time, summed over the questions:")
    for label, ms in sorted(nodes.items(), key=lambda item: -item[1])[: args.nodes]:
        print(f"  {ms / len(questions):8.3f} ms a question  {100 * ms / spent:5.1f} %  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
