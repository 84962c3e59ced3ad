"""How the SDK's objects look: HTML tables and a DAG picture for Jupyter, plain text for
a terminal, and the progress of a run being waited for.

Everything shown comes from a run's JSON (the shape of ``conveyor show --json`` and of
the server's API); every name in it is data and is escaped. Stdlib only: IPython is used
when it is already loaded (a notebook), never imported here.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "queued": "#757575",
    "skipped": "#9e9e9e",
    "cancelled": "#ef6c00",
    "interrupted": "#ef6c00",
}
_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 150, 28, 40, 14


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: str) -> str:
    colour = COLOURS.get(status, "#757575")
    return f'<span style="color:{colour};font-weight:bold">{_e(status)}</span>'


def _seconds(value: object) -> str:
    return f"{value:.2f}s" if isinstance(value, int | float) else "-"


def step_cells(step: Mapping[str, Any]) -> list[str]:
    outputs = ", ".join(str(o.get("path", "")) for o in step.get("outputs", []))
    cached = f"cached from {step['cached_from']}" if step.get("cached") else ""
    return [
        str(step.get("id", "")),
        str(step.get("status", "")),
        _seconds(step.get("duration")),
        cached,
        outputs,
    ]


def run_html(run: Mapping[str, Any], upstream: Mapping[str, Sequence[str]] | None = None) -> str:
    """A run as a heading, its parameters, a table of its steps and (when the steps'
    dependencies are known) the DAG as an inline SVG."""
    commit = str(run.get("commit") or "-")[:12] + (" + changes" if run.get("dirty") else "")
    params = ", ".join(f"{k}={v}" for k, v in (run.get("params") or {}).items())
    head = (
        f"<div><b>run {_e(run.get('id', ''))}</b> {_badge(str(run.get('status', '')))}"
        f" · {_e(run.get('pipeline', ''))} · commit <code>{_e(commit)}</code>"
        + (f" · {_e(params)}" if params else "")
        + (f"<br><i>{_e(run['error'])}</i>" if run.get("error") else "")
        + "</div>"
    )
    rows = []
    for step in run.get("steps", []):
        cells = step_cells(step)
        cells_html = [f"<code>{_e(cells[0])}</code>", _badge(cells[1]), *map(_e, cells[2:])]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells_html) + "</tr>")
    table = (
        "<table><thead><tr><th>step</th><th>status</th><th>took</th><th>cache</th>"
        "<th>outputs</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    steps = list(run.get("steps", []))
    picture = dag_svg(steps, upstream) if upstream else ""
    return head + table + picture


def run_text(run: Mapping[str, Any]) -> str:
    """A run in a few lines, as ``repr`` shows it."""
    lines = [f"<Run {run.get('id', '')} {run.get('status', '')} · {run.get('pipeline', '')}>"]
    for step in run.get("steps", []):
        cells = step_cells(step)
        lines.append(f"  {cells[1]:10} {cells[0]}  {cells[2]}  {cells[3]}".rstrip())
    return "\n".join(lines)


def runs_html(runs: Sequence[Mapping[str, Any]]) -> str:
    if not runs:
        return "<i>no runs yet</i>"
    rows = "".join(
        f"<tr><td><code>{_e(r.get('id', ''))}</code></td><td>{_badge(str(r.get('status')))}"
        f"</td><td>{_e(r.get('created_at') or '-')}</td>"
        f"<td><code>{_e(str(r.get('commit') or '-')[:12])}</code></td>"
        f"<td>{_e(r.get('pipeline', ''))}</td><td>{_e(_params(r))}</td></tr>"
        for r in runs
    )
    return (
        "<table><thead><tr><th>run</th><th>status</th><th>created</th><th>commit</th>"
        f"<th>pipeline</th><th>params</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def runs_text(runs: Sequence[Mapping[str, Any]]) -> str:
    if not runs:
        return "no runs yet"
    return "\n".join(
        f"{r.get('id', ''):12}  {r.get('status', '')!s:11}  {str(r.get('commit') or '-')[:12]:12}"
        f"  {r.get('pipeline', '')}  {_params(r)}".rstrip()
        for r in runs
    )


def _params(run: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in (run.get("params") or {}).items())


def layers(names: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each step's column: one more than the deepest step it reads from (names outside
    ``names`` are ignored; a cycle, which a plan never has, is cut)."""
    known = set(names)
    depth: dict[str, int] = {}

    def visit(name: str, path: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        before = [u for u in upstream.get(name, ()) if u in known and u not in path | {name}]
        depth[name] = 1 + max((visit(u, path | {name}) for u in before), default=-1)
        return depth[name]

    for name in names:
        visit(name, frozenset())
    return depth


def dag_svg(steps: Sequence[Mapping[str, Any]], upstream: Mapping[str, Sequence[str]]) -> str:
    """The steps as boxes coloured by status, in columns by depth, arrows from what a
    step read to the step."""
    names = [str(s.get("id", "")) for s in steps]
    status = {str(s.get("id", "")): str(s.get("status", "")) for s in steps}
    depth = layers(names, upstream)
    rows: dict[int, int] = {}
    where: dict[str, tuple[int, int]] = {}
    for name in names:
        column = depth[name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        where[name] = (column * (_BOX_W + _GAP_X) + 4, row * (_BOX_H + _GAP_Y) + 4)
    width = (max(depth.values(), default=0) + 1) * (_BOX_W + _GAP_X)
    height = max(rows.values(), default=1) * (_BOX_H + _GAP_Y) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11"><defs><marker id="cv-arrow" '
        'viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
    ]
    for name in names:
        x, y = where[name]
        for up in upstream.get(name, ()):
            if up in where and up != name:
                ux, uy = where[up]
                parts.append(
                    f'<line x1="{ux + _BOX_W}" y1="{uy + _BOX_H // 2}" x2="{x}" '
                    f'y2="{y + _BOX_H // 2}" stroke="#555" marker-end="url(#cv-arrow)"/>'
                )
    for name in names:
        x, y = where[name]
        colour = COLOURS.get(status[name], "#757575")
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<g><title>{_e(name)}: {_e(status[name])}</title><rect x="{x}" y="{y}" '
            f'width="{_BOX_W}" height="{_BOX_H}" rx="5" fill="white" stroke="{colour}" '
            f'stroke-width="2"/><text x="{x + 8}" y="{y + 18}">{_e(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython already loaded, with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A run's progress while it is waited for: a live HTML view in a notebook, one
    rewritten line on a terminal, nothing on a pipe (scripts read the result)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._notebook = enabled and in_notebook()
        self._terminal = enabled and not self._notebook and self._stream.isatty()
        self._handle: Any = None
        self._width = 0

    def update(self, run: Mapping[str, Any], total: int | None) -> None:
        steps = run.get("steps", [])
        done = sum(1 for s in steps if s.get("status") not in ("queued", "running"))
        running = [str(s.get("id")) for s in steps if s.get("status") == "running"]
        count = total if total is not None else len(steps)
        if self._notebook:
            self._show(bar_html(done, count) + run_html(run))
        elif self._terminal:
            line = f"run {run.get('id')} {bar_text(done, count)}  {', '.join(running)[:40]}"
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self._stream.flush()

    def close(self, run: Mapping[str, Any]) -> None:
        if self._notebook:
            self._show(run_html(run))
        elif self._terminal:
            line = f"run {run.get('id')} {run.get('status')}"
            self._stream.write("\r" + line.ljust(self._width) + "\n")
            self._stream.flush()

    def _show(self, markup: str) -> None:
        import importlib

        shown: Any = importlib.import_module("IPython.display")  # loaded: in a notebook
        if self._handle is None:
            self._handle = shown.display(shown.HTML(markup), display_id=True)
        else:
            self._handle.update(shown.HTML(markup))


def bar_text(done: int, total: int, width: int = 24) -> str:
    filled = width * done // total if total else 0
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} steps"


def bar_html(done: int, total: int) -> str:
    share = 100 * done // total if total else 0
    return (
        f'<div style="width:300px;border:1px solid #999;height:10px"><div style="width:'
        f'{share}%;background:#1565c0;height:10px"></div></div><div>{done}/{total} steps</div>'
    )
