"""``conveyor plots``: the metrics of a branch's runs, oldest first, as one self-contained
HTML page (the charts inline as SVG, a table of the runs) and one PNG.

The runs of a branch are those whose commit is in the branch's history. Metrics are read
as ``metrics show`` reads them (files, ``log_metric`` values, Dotscience summaries); one
chart per numeric metric, a run without that metric left as a gap. Charts are drawn by
matplotlib (the optional extra ``conveyor[plots]``), imported only here; every name in
them is data: drawn as paths, never read as TeX.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import NotFoundError, UsageError
from conveyor.metadata.records import RunRecord
from conveyor.sdk.project import Project
from conveyor.sdk.tracking import read_tracking
from conveyor.vcs.git import branch_commits, check_ref, head_names

MAX_RUNS = 500
MAX_CHARTS = 36
"""Metrics drawn at most (the first by name); the page says how many were left out."""


@dataclass(frozen=True)
class Series:
    """Runs of a branch and each numeric metric across them (None: not in that run)."""

    branch: str
    runs: list[RunRecord]
    metrics: dict[str, list[float | None]]
    """``source:key`` -> one value per run."""


def branch_series(project: Project, branch: str | None, limit: int = MAX_RUNS) -> Series:
    """The branch's runs (HEAD's branch by default), oldest first, and their metrics."""
    name = branch or head_names(project.root).branch
    if name is None:
        raise UsageError("HEAD is on no branch; name one with --branch")
    check_ref(f"refs/heads/{name}")
    commits = branch_commits(project.root, name)
    if not commits:
        raise NotFoundError(f"no branch {name!r} in this repository")
    runs = [r for r in project.records.list_runs(limit=limit) if r.commit in commits]
    runs.sort(key=lambda r: r.created_at)
    metrics: dict[str, list[float | None]] = {}
    for index, run in enumerate(runs):
        for source, values in read_tracking(project, run).metrics.items():
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                if not math.isfinite(value):
                    continue
                metrics.setdefault(f"{source}:{key}", [None] * len(runs))[index] = float(value)
    return Series(name, runs, dict(sorted(metrics.items())))


def write_plots(series: Series, directory: Path) -> tuple[Path, Path]:
    """``metrics.html`` and ``metrics.png`` in ``directory``; their paths."""
    figure = _figure(series)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / "metrics.png"
    figure.savefig(png, dpi=100)
    svg = io.StringIO()
    figure.savefig(svg, format="svg")
    page = directory / "metrics.html"
    page.write_text(_page(series, svg.getvalue()), encoding="utf-8")
    return page, png


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            "conveyor plots draws with matplotlib, which is not installed here: "
            "pip install 'conveyor[plots]'"
        ) from None
    matplotlib.use("Agg")  # files only: no display, whatever the environment says
    matplotlib.rcParams["svg.fonttype"] = "path"  # text as shapes: no markup in the SVG
    import matplotlib.pyplot as plt

    return plt


def _figure(series: Series) -> Any:
    plt = _pyplot()
    names = list(series.metrics)[:MAX_CHARTS]
    columns = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    labels = [run.id[:8] for run in series.runs]
    for n, axis in enumerate(axes.flat):
        if n >= len(names):
            axis.set_visible(n == 0 and not names)
            if not names:
                axis.text(0.5, 0.5, "no numeric metrics in these runs", ha="center")
                axis.set_axis_off()
            continue
        values = series.metrics[names[n]]
        xs = [i for i, v in enumerate(values) if v is not None]
        axis.plot(xs, [values[i] for i in xs], marker="o")
        axis.set_title(_plain(names[n]), fontsize=9)
        axis.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7, ha="right")
        axis.grid(alpha=0.3)
    figure.suptitle(_plain(f"metrics of the runs of {series.branch}"))
    figure.tight_layout()
    return figure


def _plain(text: str) -> str:
    """A name drawn as it is: ``$`` would start TeX in matplotlib's text."""
    return text.replace("$", r"\$")


def _page(series: Series, svg: str) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(run.id[:12])}</td><td>{e((run.commit or '')[:12])}</td>"
        f"<td>{e(str(run.status))}</td>"
        f"<td>{e(', '.join(f'{k}={v}' for k, v in sorted(run.params.items())))}</td></tr>"
        for run in series.runs
    )
    left = len(series.metrics) - MAX_CHARTS
    note = f"<p>{left} more metrics not drawn.</p>" if left > 0 else ""
    svg_body = svg[svg.find("<svg") :]  # the XML declaration and doctype dropped
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{e(series.branch)}: metrics</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}</style></head><body>"
        f"<h1>Metrics of the runs of {e(series.branch)}</h1>{svg_body}{note}"
        "<h2>Runs</h2><table><tr><th>run</th><th>commit</th><th>status</th>"
        f"<th>parameters</th></tr>{rows}</table></body></html>\n"
    )
