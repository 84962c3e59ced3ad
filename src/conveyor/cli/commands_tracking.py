"""metrics show/diff, params diff, runs compare: what runs measured, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conveyor.cli.columns import cell_text, echo_table
from conveyor.cli.commands_inspect import runs
from conveyor.cli.context import Context, emit_json

pass_context = click.make_pass_decorator(Context)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
_ALL = click.option("--all", "show_all", is_flag=True, help="Show unchanged values too.")


def _warn(errors: list[str]) -> None:
    for error in errors:
        click.echo(f"warning: {error}", err=True)


@click.group()
def metrics() -> None:
    """Metrics of runs: declared metrics files and `conveyor.log_metric` values.

    \b
    A step declares `metrics: [out/metrics.json]` (JSON, YAML, CSV or TSV) or calls
    `conveyor.log_metric("auc", 0.91)` from its Python code; see docs/tracking.md.
    """


@metrics.command("show")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@_JSON
@click.option("--remote", is_flag=True, help="A run on the project's server ([remote] settings).")
@pass_context
def show(ctx: Context, run_ref: str, as_json: bool, remote: bool) -> None:
    """Show the metrics of a run (default: the latest), by file or step.

    \b
    Examples:
      conveyor metrics show 3f2a9c --json
      conveyor metrics show latest --remote
    """
    project = ctx.project()
    if remote:
        from conveyor.sdk.remote import RemoteClient

        with RemoteClient.for_project(project) as client:
            found = client.metrics(run_ref)
    else:
        from conveyor.sdk.tracking import read_tracking

        found = read_tracking(project, project.resolve_run(run_ref)).to_json()
    if as_json:
        emit_json(found)
    else:
        lines = [
            [s, k, cell_text(v)] for s, vals in found["metrics"].items() for k, v in vals.items()
        ]
        if lines:
            echo_table(["source", "metric", "value"], lines)
        else:
            click.echo(f"run {found['run']} recorded no metrics")
        for step, runs in found.get("dotscience", {}).items():
            for published in runs:
                click.echo(_published(step, published))
    _warn(found["errors"])


def _published(step: str, run: dict[str, Any]) -> str:
    """One line for a run a Dotscience script published."""
    described = f": {run['description']}" if run.get("description") else ""
    parts = [
        f"{label} {', '.join(run[key])}"
        for key, label in (("input", "inputs"), ("output", "outputs"))
        if run.get(key)
    ]
    if run.get("labels"):
        parts.insert(0, "labels " + ", ".join(f"{k}={v}" for k, v in run["labels"].items()))
    if run.get("error"):
        parts.append(f"error {run['error']}")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return f"{step} published Dotscience run {run['id'][:8]}{described}{detail}"


def _diff(ctx: Context, a: str, b: str, which: str, show_all: bool, as_json: bool) -> None:
    from conveyor.sdk.tracking import diff, read_tracking

    project = ctx.project()
    old, new = (read_tracking(project, project.resolve_run(ref)) for ref in (a, b))
    changes = diff(getattr(old, which), getattr(new, which), show_all)
    errors = [f"run {r.run_id}: {e}" for r in (old, new) for e in r.errors]
    if as_json:
        found = [c.to_json() for c in changes]
        emit_json({"old": old.run_id, "new": new.run_id, which: found, "errors": errors})
    elif not changes:
        click.echo(f"no {which} differ between {old.run_id} and {new.run_id}")
    else:
        echo_table(
            ["source", "key", old.run_id, new.run_id, "change"],
            [
                [
                    c.source,
                    c.key,
                    cell_text(c.old) if c.present[0] else "-",
                    cell_text(c.new) if c.present[1] else "-",
                    "" if c.delta is None else f"{c.delta:+.6g}",
                ]
                for c in changes
            ],
        )
    _warn(errors)


@metrics.command("diff")
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B", default="latest")
@_ALL
@_JSON
@pass_context
def metrics_diff(ctx: Context, run_a: str, run_b: str, show_all: bool, as_json: bool) -> None:
    """Metrics that differ from run A to run B (default: the latest), with the change.

    \b
    Example:
      conveyor metrics diff 3f2a9c 77b1
    """
    _diff(ctx, run_a, run_b, "metrics", show_all, as_json)


@click.group()
def params() -> None:
    """Parameters of runs: `-p` values and `conveyor.log_param` values."""


@params.command("diff")
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B", default="latest")
@_ALL
@_JSON
@pass_context
def params_diff(ctx: Context, run_a: str, run_b: str, show_all: bool, as_json: bool) -> None:
    """Parameters that differ from run A to run B (default: the latest).

    \b
    Example:
      conveyor params diff 3f2a9c 77b1 --json
    """
    _diff(ctx, run_a, run_b, "params", show_all, as_json)


@runs.command("compare")
@click.argument("run_refs", metavar="A B [C...]", nargs=-1, required=True)
@_JSON
@pass_context
def compare(ctx: Context, run_refs: tuple[str, ...], as_json: bool) -> None:
    """Runs side by side: parameters, metrics and the outputs whose content changed.

    \b
    Example:
      conveyor runs compare 3f2a9c 77b1 latest
    """
    from conveyor.sdk.tracking import compare as compare_runs

    if len(run_refs) < 2:
        raise click.UsageError("give at least two runs to compare")
    project = ctx.project()
    result = compare_runs(project, [project.resolve_run(ref) for ref in run_refs])
    if as_json:
        emit_json(result.to_json())
    else:
        for title, found, names in (
            ("parameters", result.params, ["source", "key"]),
            ("metrics", result.metrics, ["source", "key"]),
            ("changed outputs", result.outputs, ["step", "path"]),
        ):
            click.echo(f"{title}:")
            if not found:
                click.echo("  (none)")
                continue
            echo_table(
                ["", *names, *result.runs],
                [
                    ["*" if r.differs else "", r.source, r.key, *(_short(v) for v in r.values)]
                    for r in found
                ],
            )
    _warn(result.errors)


def _short(value: Any) -> str:
    text = cell_text(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


@click.command()
@click.option("--branch", metavar="B", help="The branch whose runs to draw (default: HEAD's).")
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where metrics.html and metrics.png go (default: .conveyor/plots).",
)
@click.option(
    "--limit", type=click.IntRange(1, 500), default=500, help="Look at this many latest runs."
)
@_JSON
@pass_context
def plots(
    ctx: Context, branch: str | None, directory: Path | None, limit: int, as_json: bool
) -> None:
    """Draw the metrics of a branch's runs: one self-contained HTML page and a PNG.

    \b
    The runs of a branch are those whose commit is in its history, oldest first; one
    chart per numeric metric (as `metrics show` reads them). Needs matplotlib
    (pip install 'conveyor[plots]').

    \b
    Example:
      conveyor plots --branch main -o reports/
    """
    from conveyor.sdk.plots import branch_series, write_plots

    project = ctx.project()
    series = branch_series(project, branch, limit)
    page, png = write_plots(series, directory or project.state_dir / "plots")
    if as_json:
        emit_json(
            {
                "branch": series.branch,
                "runs": [run.id for run in series.runs],
                "metrics": series.metrics,
                "html": str(page),
                "png": str(png),
            }
        )
    else:
        click.echo(
            f"{len(series.runs)} runs of {series.branch}, {len(series.metrics)} metrics: "
            f"{page} and {png}"
        )


COMMANDS = [metrics, params, plots]
