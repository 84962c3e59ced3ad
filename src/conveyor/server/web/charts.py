"""Metrics across runs as line charts: a series per metric (its source and key), a
point per run that recorded a number for it, oldest run first. Pure: the values come
from ``sdk.tracking`` and the template draws the SVG from these coordinates (a
polyline over a linear scale: no layout problem, so no plotting library: matplotlib
would cost its import on a page view, and its SVG's inline styles are what the page's
CSP forbids)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from conveyor.sdk.metricfiles import Scalar
from conveyor.sdk.tracking import Table

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 12, 24
MAX_SERIES = 40


@dataclass(frozen=True)
class Point:
    run: str
    value: float
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    source: str
    key: str
    points: tuple[Point, ...]
    low: float
    high: float
    last: float

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def numeric(value: Scalar) -> float | None:
    """A value a chart can plot (not a boolean, not text, finite), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def charts(runs: list[tuple[str, Table]], limit: int = MAX_SERIES) -> tuple[list[Chart], bool]:
    """The charts of ``runs`` (oldest first: run id and its metrics table), one per
    metric with a number in at least one run; and whether some were left out."""
    series: dict[tuple[str, str], list[tuple[int, str, float]]] = {}
    for index, (run_id, table) in enumerate(runs):
        for source, values in sorted(table.items()):
            for key, value in sorted(values.items()):
                number = numeric(value)
                if number is not None:
                    series.setdefault((source, key), []).append((index, run_id, number))
    keys = sorted(series)
    drawn = [_chart(source, key, series[(source, key)], len(runs)) for source, key in keys[:limit]]
    return drawn, len(keys) > limit


def _chart(source: str, key: str, values: list[tuple[int, str, float]], count: int) -> Chart:
    low = min(v for _, _, v in values)
    high = max(v for _, _, v in values)
    span = high - low
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / max(count - 1, 1)
    points = []
    for index, run_id, value in values:
        x = PAD_LEFT + (index * step if count > 1 else inner_w / 2)
        share = (value - low) / span if span else 0.5
        points.append(Point(run_id, value, x, PAD_TOP + (1 - share) * inner_h))
    return Chart(source, key, tuple(points), low, high, values[-1][2])
