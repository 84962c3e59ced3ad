"""``conveyor run --sweep``: the runs of a sweep, then one table of them (a row per run:
its status, the values swept and the metrics that differ between the runs).

One run after another here, with each run's progress; with ``-j N`` (N > 1), N runs at
once in worktrees of HEAD (each its steps one at a time), one line per run as it starts,
and Ctrl-C cancels them all."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.columns import cell_text, echo_table
from conveyor.cli.context import EXIT_CANCELLED, emit_json
from conveyor.domain.types import ParamValue
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunHooks, RunRequest

if TYPE_CHECKING:
    from conveyor.sdk.sweep import Sweep


def run_sweep_command(
    project: Project,
    request: RunRequest,
    given: Mapping[str, str],
    hooks: Callable[[], RunHooks],
    as_json: bool,
    jobs: int | None = None,
) -> int:
    """Run the sweep; the exit code: 0 when every run succeeded, else 1 (130: cancelled)."""
    from conveyor.sdk.sweep import run_sweep, run_sweep_parallel, split_values

    axes: dict[str, list[ParamValue]] = {**project.load_spec().sweep}
    axes.update(split_values(given))
    base = replace(request, params={})

    def started(index: int, total: int, combination: Mapping[str, ParamValue]) -> None:
        shown = " ".join(f"{k}={v}" for k, v in combination.items())
        click.echo(f"sweep: run {index + 1} of {total}: {shown}", err=True)

    if jobs is not None and jobs > 1:
        base = replace(base, parallelism=1)  # -j counts runs here: each steps one at a time
        parallel = _cancel_all_on_signals()
        sweep = run_sweep_parallel(project, base, axes, parallel, jobs, started)
    else:
        sweep = run_sweep(project, base, axes, hooks, started)
    if as_json:
        emit_json(sweep.to_json())
    else:
        _print_table(sweep, list(axes))
    for error in sweep.comparison.errors:
        click.echo(f"warning: {error}", err=True)
    if len(sweep.runs) < len(sweep.combinations) or any(
        str(r.status) == "cancelled" for r in sweep.runs
    ):
        return EXIT_CANCELLED
    return 0 if sweep.succeeded else 1


def _cancel_all_on_signals() -> Callable[[], RunHooks]:
    """Hooks for runs in threads: each runner is kept, and one handler (installed here,
    in the main thread) cancels every one, and any that starts after it."""
    import signal
    import threading

    runners: list[Any] = []
    cancelled = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        cancelled.set()
        for runner in list(runners):
            runner.cancel_from_signal()

    def keep(runner: Any) -> None:
        runners.append(runner)
        if cancelled.is_set():
            runner.cancel_from_signal()

    handler.conveyor_cancels = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    return lambda: RunHooks(on_runner=keep, on_warning=warn)


def _print_table(sweep: Sweep, names: list[str]) -> None:
    metrics = sweep.comparison.metrics
    keys = [row.key for row in metrics]
    titles = [row.key if keys.count(row.key) == 1 else f"{row.source}:{row.key}" for row in metrics]
    header = ["run", "status", *names, *titles]
    lines = [
        [run.id[:12], str(run.status), *(cell_text(values.get(n)) for n in names)]
        + [cell_text(row.values[i]) for row in metrics]
        for i, (run, values) in enumerate(zip(sweep.runs, sweep.values(), strict=True))
    ]
    click.echo("")
    echo_table(header, lines)
