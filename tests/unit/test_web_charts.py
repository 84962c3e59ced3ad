"""Metrics charts across runs: a series per metric with a number, oldest run first,
scaled into the chart; text, booleans and non-finite values are not points."""

from __future__ import annotations

import math

from conveyor.server.web import charts as c


def test_a_series_per_numeric_metric_in_run_order() -> None:
    runs = [
        ("r1", {"m.json": {"loss": 0.5, "name": "a", "ok": True}}),
        ("r2", {"m.json": {"loss": 0.25}, "log:a.fit": {"acc": 0.9}}),
        ("r3", {"m.json": {"loss": math.inf}}),
    ]
    drawn, cut = c.charts(runs)
    assert not cut
    assert [(x.source, x.key) for x in drawn] == [("log:a.fit", "acc"), ("m.json", "loss")]
    loss = drawn[1]
    assert [p.run for p in loss.points] == ["r1", "r2"]
    assert (loss.low, loss.high, loss.last) == (0.25, 0.5, 0.25)
    first, second = loss.points
    assert first.x == c.PAD_LEFT and first.y == c.PAD_TOP  # the highest value at the top
    assert second.y == c.HEIGHT - c.PAD_BOTTOM  # the lowest at the bottom
    assert loss.polyline == f"{first.x:.1f},{first.y:.1f} {second.x:.1f},{second.y:.1f}"


def test_one_value_sits_in_the_middle() -> None:
    (chart,), _ = c.charts([("r1", {"m": {"x": 3}})])
    (point,) = chart.points
    inner_h = c.HEIGHT - c.PAD_TOP - c.PAD_BOTTOM
    assert point.y == c.PAD_TOP + inner_h / 2


def test_too_many_metrics_are_cut() -> None:
    table = {"m": {f"k{i:03d}": float(i) for i in range(c.MAX_SERIES + 5)}}
    drawn, cut = c.charts([("r1", table), ("r2", table)])
    assert cut and len(drawn) == c.MAX_SERIES
