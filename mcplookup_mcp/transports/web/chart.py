"""The probe-history chart on a server's page: geometry for an inline SVG, drawn on the server.

Read from the roll-ups, so it costs the same at any registry size: one slot per UTC day of the week
before yesterday, then one per UTC hour of yesterday and today (HealthMonitor.get_health_with_timeline).
The mean handshake latency of each slot as a line, and one bar per slot below it: every probe up, some
down, or every one down. The template turns this into SVG elements (so every label is escaped like any
other text); no script draws anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from mcplookup_mcp.core.models import HealthSpan

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


def _span_tone(span: HealthSpan) -> str:
    if span.up_checks >= span.checks:
        return "ok"
    return "bad" if span.up_checks == 0 else "warn"


def _span_when(span: HealthSpan) -> str:
    if span.hours == 24:
        return f"{span.start:%Y-%m-%d} UTC"
    end = span.start + timedelta(hours=span.hours)
    return f"{span.start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"


def timeline_chart(spans: Sequence[HealthSpan]) -> Chart | None:
    """The chart of `spans` (oldest first, days then hours), or None with no probes."""
    spans = [s for s in spans if s.checks > 0]
    if not spans:
        return None
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / len(spans)
    latencies = [s.latency_ms for s in spans if s.latency_ms is not None]
    top = _nice_ceiling(max(latencies)) if latencies else 1.0
    span_px = PLOT_BOTTOM - PLOT_TOP

    bars: list[Bar] = []
    dots: list[Dot] = []
    for index, span in enumerate(spans):
        x = LEFT + index * slot
        latency = f", mean handshake {_ms(span.latency_ms)}" if span.latency_ms is not None else ""
        share = 100.0 * span.up_checks / span.checks
        label = f"{_span_when(span)}: {span.up_checks} of {span.checks} probes up ({share:.1f}%){latency}"
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 2),
                width=round(max(slot * 0.8, 1.0), 2),
                tone=_span_tone(span),
                label=label,
            )
        )
        if span.latency_ms is not None:
            y = PLOT_BOTTOM - span_px * min(span.latency_ms / top, 1.0)
            dots.append(Dot(x=round(x + slot / 2, 2), y=round(y, 2), label=label))

    checks = sum(s.checks for s in spans)
    up = sum(s.up_checks for s in spans)
    first, last = spans[0].start, spans[-1].start + timedelta(hours=spans[-1].hours)
    summary = f"{checks} probes from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC: {up} up, {checks - up} down"
    if latencies:
        summary += (
            f"; mean handshake latency {_ms(min(latencies))} to {_ms(max(latencies))} per {_unit(spans)}"
        )
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
            Tick(y=round(PLOT_BOTTOM - span_px / 2, 2), label=_ms(top / 2)),
            Tick(y=PLOT_TOP, label=_ms(top)),
        ],
        first_label=f"{first:%m-%d %H:%M}",
        last_label=f"{last:%m-%d %H:%M} UTC",
        summary=summary,
    )


def _unit(spans: Sequence[HealthSpan]) -> str:
    kinds = {s.hours for s in spans}
    if kinds == {24}:
        return "day"
    return "hour" if kinds == {1} else "day, then per hour"
