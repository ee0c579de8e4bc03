"""The shipped monitoring files (deploy/monitoring) read by the tests: dashboard expressions and the
metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

MONITORING = Path(__file__).parent.parent / "deploy" / "monitoring"


_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "by", "without", "on", "ignoring",
    "and", "or", "unless", "histogram_quantile", "time", "le", "bool", "offset", "abs", "group_left",
    "group_right", "clamp_min", "clamp_max", "topk", "bottomk", "delta", "deriv", "absent",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping, strings and durations
    removed; what remains that is not a function or a keyword is a metric)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return {w for w in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr) if w not in _PROMQL_WORDS}


def panel_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
