"""The probe-history chart on a server's page: geometry for an inline SVG, drawn on the server.

Latency of each completed handshake as a line, and one bar per probe below it, up or down. The template
turns this into SVG elements (so every label is escaped like any other text); no script draws anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mcplookup_mcp.core.models import HealthCheckOut

WIDTH = 640
HEIGHT = 210
LEFT = 56  # room for the latency axis labels
RIGHT = 12
PLOT_TOP = 14
PLOT_BOTTOM = 130
STRIP_TOP = 146
STRIP_HEIGHT = 22
LABEL_Y = 190

# A status's look: ok (up and well), warn (up, but slow or asking for credentials), none (never probed),
# bad (down or blocked).
_TONE = {"healthy": "ok", "degraded": "warn", "auth_required": "warn", "unknown": "none"}


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    tone: str
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right_edge: int
    plot_top: int
    plot_bottom: int
    strip_top: int
    strip_height: int
    label_y: int
    bars: list[Bar]
    line: str
    dots: list[Dot]
    ticks: list[Tick]
    first_label: str
    last_label: str
    summary: str


def tone(status: str) -> str:
    return _TONE.get(status, "bad")


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= value (axis tops read as round figures)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def probe_chart(history: Sequence[HealthCheckOut]) -> Chart | None:
    """The chart of `history` (newest first, as get_server_health returns it), or None with no probes."""
    if not history:
        return None
    probes = list(reversed(history))
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / len(probes)
    latencies = [p.latency_ms for p in probes if p.latency_ms is not None]
    top = _nice_ceiling(max(latencies)) if latencies else 1.0
    span = PLOT_BOTTOM - PLOT_TOP

    bars: list[Bar] = []
    dots: list[Dot] = []
    for index, probe in enumerate(probes):
        x = LEFT + index * slot
        when = f"{probe.checked_at:%Y-%m-%d %H:%M} UTC"
        latency = f", {_ms(probe.latency_ms)}" if probe.latency_ms is not None else ""
        label = f"{when}: {probe.status}{latency}"
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 2),
                width=round(max(slot * 0.8, 1.0), 2),
                tone=tone(probe.status),
                label=label,
            )
        )
        if probe.latency_ms is not None:
            y = PLOT_BOTTOM - span * min(probe.latency_ms / top, 1.0)
            dots.append(Dot(x=round(x + slot / 2, 2), y=round(y, 2), label=label))

    up = sum(1 for p in probes if p.up)
    summary = f"{len(probes)} probes from {probes[0].checked_at:%Y-%m-%d %H:%M} to {probes[-1].checked_at:%Y-%m-%d %H:%M} UTC: {up} up, {len(probes) - up} down"
    if latencies:
        summary += f"; handshake latency {_ms(min(latencies))} to {_ms(max(latencies))}"
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        plot_top=PLOT_TOP,
        plot_bottom=PLOT_BOTTOM,
        strip_top=STRIP_TOP,
        strip_height=STRIP_HEIGHT,
        label_y=LABEL_Y,
        bars=bars,
        line=" ".join(f"{d.x},{d.y}" for d in dots),
        dots=dots,
        ticks=[
            Tick(y=PLOT_BOTTOM, label="0 ms"),
            Tick(y=round(PLOT_BOTTOM - span / 2, 2), label=_ms(top / 2)),
            Tick(y=PLOT_TOP, label=_ms(top)),
        ],
        first_label=f"{probes[0].checked_at:%m-%d %H:%M}",
        last_label=f"{probes[-1].checked_at:%m-%d %H:%M} UTC",
        summary=summary,
    )
