"""Trust score: 0-100 from observed facts, each signal worth a stated number of points (docs/trust.md).

Every signal gives whole points, and the score is their sum, so a breakdown always adds up to its score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mcplookup_mcp.core.models import TrustBreakdown, TrustSignal

VERIFIED_POINTS = 25
UPTIME_POINTS = 25
LATENCY_POINTS = 10
TLS_POINTS = 10
AGE_POINTS = 10
TOOLS_STABLE_POINTS = 10
AUTH_POINTS = 10

FAST_MS = 500.0
AGE_FULL = timedelta(days=90)
TOOLS_STABLE_FOR = timedelta(days=7)


@dataclass(frozen=True)
class TrustFacts:
    verified: bool
    uptime_7d: float | None
    avg_latency_ms: float | None
    degraded_ms: float
    tls_valid: bool | None
    listed_for: timedelta
    tools_seen: bool
    tools_unchanged_for: timedelta | None
    auth_declared: str
    auth_observed: str | None  # "required" (401/403), "open" (a handshake answered), None (not known)


def _uptime(facts: TrustFacts) -> TrustSignal:
    if facts.uptime_7d is None:
        return TrustSignal(signal="uptime", points=0, max_points=UPTIME_POINTS, detail="not probed yet")
    points = int(UPTIME_POINTS * max(0.0, min(facts.uptime_7d, 100.0)) / 100.0)
    return TrustSignal(
        signal="uptime",
        points=points,
        max_points=UPTIME_POINTS,
        detail=f"{facts.uptime_7d:g}% up over 7 days",
    )


def _latency(facts: TrustFacts) -> TrustSignal:
    ms = facts.avg_latency_ms
    if ms is None:
        return TrustSignal(
            signal="latency", points=0, max_points=LATENCY_POINTS, detail="no completed handshake in 24 hours"
        )
    if ms <= FAST_MS:
        points = LATENCY_POINTS
    elif ms >= facts.degraded_ms:
        points = 0
    else:
        points = int(LATENCY_POINTS * (facts.degraded_ms - ms) / (facts.degraded_ms - FAST_MS))
    return TrustSignal(
        signal="latency", points=points, max_points=LATENCY_POINTS, detail=f"{ms:g} ms average over 24 hours"
    )


def _auth(facts: TrustFacts) -> TrustSignal:
    declared, observed = facts.auth_declared, facts.auth_observed
    if observed is None:
        return TrustSignal(
            signal="auth_consistent", points=0, max_points=AUTH_POINTS, detail="not observed yet"
        )
    if (declared == "none") == (observed == "open"):
        points, detail = AUTH_POINTS, f"declared {declared}, observed {observed}: consistent"
    elif declared == "none":
        points, detail = 0, "declared no auth, but the server demands credentials"
    else:
        # Optional auth is legitimate, so an open server that declares auth loses only half.
        points, detail = AUTH_POINTS // 2, f"declared {declared}, but the handshake needed no credentials"
    return TrustSignal(signal="auth_consistent", points=points, max_points=AUTH_POINTS, detail=detail)


def trust_score(facts: TrustFacts) -> TrustBreakdown:
    days = facts.listed_for.total_seconds() / 86400
    age_points = int(AGE_POINTS * min(max(facts.listed_for / AGE_FULL, 0.0), 1.0))
    if not facts.tools_seen:
        tools = TrustSignal(
            signal="tools_stable", points=0, max_points=TOOLS_STABLE_POINTS, detail="no tool list seen yet"
        )
    elif facts.tools_unchanged_for is None or facts.tools_unchanged_for >= TOOLS_STABLE_FOR:
        tools = TrustSignal(
            signal="tools_stable",
            points=TOOLS_STABLE_POINTS,
            max_points=TOOLS_STABLE_POINTS,
            detail="tool list unchanged for 7 days or more",
        )
    else:
        tools = TrustSignal(
            signal="tools_stable",
            points=0,
            max_points=TOOLS_STABLE_POINTS,
            detail="tool list changed in the last 7 days",
        )
    signals = [
        TrustSignal(
            signal="domain_verified",
            points=VERIFIED_POINTS if facts.verified else 0,
            max_points=VERIFIED_POINTS,
            detail="domain proven by DNS TXT record" if facts.verified else "domain not verified",
        ),
        _uptime(facts),
        _latency(facts),
        TrustSignal(
            signal="tls_valid",
            points=TLS_POINTS if facts.tls_valid else 0,
            max_points=TLS_POINTS,
            detail={True: "certificate valid", False: "certificate rejected", None: "no TLS seen"}[
                facts.tls_valid
            ],
        ),
        TrustSignal(signal="age", points=age_points, max_points=AGE_POINTS, detail=f"listed {days:.0f} days"),
        tools,
        _auth(facts),
    ]
    return TrustBreakdown(score=sum(s.points for s in signals), signals=signals)
