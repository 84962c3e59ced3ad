"""run and rerun."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

import click

from conveyor.cli.context import (
    EXIT_CANCELLED,
    Context,
    emit_json,
    file_argument,
    file_option,
    param_values,
    payload_option,
)

pass_context = click.make_pass_decorator(Context)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _exit_code(status: str) -> int:
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(status, 1)


CANCELLING = "\nconveyor: cancelling: removing the run's steps from its executors…\n"
STILL_CANCELLING = (
    "conveyor: still cancelling: the run's jobs are being removed; it ends when they "
    "are (kill -9 would leave them queued)\n"
)


def _cancel_on_signals(runner: Any) -> None:
    """Ctrl-C (or SIGTERM) cancels the run; another one says it is still cancelling.

    The handler never raises and never calls into the runner's locks, the executors or
    Python's buffered I/O: Python runs it between two bytecodes of the main thread,
    which may be inside an executor's bindings (a schedd call) or holding a queue's
    lock. Raising ``KeyboardInterrupt`` there (as a second Ctrl-C once did) unwound the
    run mid-call and exited while threads were still inside the HTCondor bindings, and
    left jobs queued. It sets a flag and writes with one ``os.write``; the runner's loop
    cancels, and ``close`` removes every job before the process exits."""
    calls = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        calls["n"] += 1
        with contextlib.suppress(OSError):  # stderr closed: the cancel matters more
            os.write(2, (CANCELLING if calls["n"] == 1 else STILL_CANCELLING).encode())
        runner.cancel_from_signal()

    handler.conveyor_cancels = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run_is_over() -> None:
    """Once the run is finalised and its executors closed, a late Ctrl-C has nothing
    left to cancel: it is ignored, not left to the interpreter's exit (which restores
    the default handler, so the process would die by the signal, not exit 130)."""
    if getattr(signal.getsignal(signal.SIGINT), "conveyor_cancels", False):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@click.command()
@click.option(
    "-j",
    "--jobs",
    "parallelism",
    type=click.IntRange(min=1),
    help="Steps run at once (default: CPU count).",
)
@click.option(
    "--only",
    multiple=True,
    metavar="STEP",
    help="Run only these steps (job.step or job) and what they need.",
)
@click.option("--force", is_flag=True, help="Run every step, ignoring the cache.")
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Set a parameter."
)
@click.option(
    "--executor", metavar="NAME", help="Run on this executor (default: the project's setting)."
)
@click.option(
    "--no-wait", is_flag=True, help="Refuse instead of waiting when another run is in progress."
)
@click.option(
    "--event",
    metavar="EVENT",
    help="Act as this Drone event for trigger/when conditions: push (default), tag (the tag "
    "on HEAD), cron, custom, pull_request, promote, rollback.",
)
@click.option("--cron", metavar="NAME", default="", help="With --event cron: the cron job's name.")
@payload_option
@click.option(
    "--target",
    metavar="ENV",
    default="",
    help="With --event promote or rollback: the environment it deploys to.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the finished run as JSON (progress goes to stderr).",
)
@file_option
@click.option(
    "--remote", is_flag=True, help="Queue the run on the project's server ([remote] settings)."
)
@click.option(
    "--ref",
    metavar="REF",
    help="With --remote: the branch, tag or commit (default: HEAD's branch).",
)
@click.option("--detach", is_flag=True, help="With --remote: queue and return at once.")
@click.option(
    "--sweep",
    is_flag=True,
    help="One run per combination of the values given as -p NAME=A,B,C (and of the "
    "pipeline's `sweep:` block), then a table comparing them; with -j N, N runs at once "
    "(each in a worktree of HEAD's commit).",
)
@file_argument
@pass_context
def run(
    ctx: Context,
    parallelism: int | None,
    only: tuple[str, ...],
    force: bool,
    params: tuple[str, ...],
    executor: str | None,
    no_wait: bool,
    event: str | None,
    cron: str,
    payload: dict[str, Any],
    target: str,
    as_json: bool,
    remote: bool,
    ref: str | None,
    detach: bool,
    sweep: bool,
) -> None:
    """Run the pipeline; steps whose fingerprint is unchanged come from the cache.

    \b
    Examples:
      conveyor run                   run everything that changed
      conveyor run -j 4 -p lr=0.01   four steps at a time, with a parameter
      conveyor run --only train      the train job and the steps it needs
      conveyor run --event tag       a .drone.yml run as for the tag on HEAD
      conveyor run --payload event.json  a DataTorch pipeline as its annotator
                                     button starts it (${{ event.fileId }} ...)
      conveyor run pipeline.py -p x=3  a pipeline written in Python (@conveyor.pipeline)
      conveyor run --sweep -p lr=0.1,0.01 -p depth=3,5
                                     four runs, one per combination, then compared
    """
    from conveyor.cli.progress import make_reporter
    from conveyor.sdk.running import RunHooks, RunRequest, start_run

    project = ctx.project()
    if sweep and (remote or detach or ref):
        raise click.UsageError("--sweep runs here, one run after another; drop --remote")
    if remote and payload:
        raise click.UsageError(
            "--payload gives a local run its event; a server's run has its trigger's"
        )
    if remote:
        from conveyor.cli.remote import run_remote

        sys.exit(run_remote(project, ref, params, as_json, detach))
    reporter = make_reporter(as_json)

    def on_wait(holder: str) -> None:
        click.echo(
            f"conveyor: another run is in progress here ({holder}); waiting for it…", err=True
        )

    given = param_values(params)
    request = RunRequest(
        params=given,
        only=only,
        force=force,
        parallelism=parallelism,
        executor=executor,
        wait=not no_wait,
        event=event,
        cron=cron,
        target=target,
        payload=payload,
    )
    hooks = RunHooks(reporter, on_wait, _cancel_on_signals, _warn)
    if sweep:
        from conveyor.cli.sweep import run_sweep_command

        def new_hooks() -> RunHooks:
            return RunHooks(make_reporter(as_json), on_wait, _cancel_on_signals, _warn)

        try:
            sys.exit(run_sweep_command(project, request, given, new_hooks, as_json, parallelism))
        finally:
            _run_is_over()
    try:
        record = start_run(project, request, hooks)
    finally:
        _run_is_over()
    if as_json:
        from conveyor.sdk.inspect import run_json

        emit_json(run_json(project, record))
    sys.exit(_exit_code(str(record.status)))


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--keep", is_flag=True, help="Keep the temporary worktree for inspection.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@pass_context
def rerun(ctx: Context, run_ref: str, keep: bool, as_json: bool) -> None:
    """Reproduce RUN from its commit in a temporary worktree and compare output digests.

    Exit code 0 when every output matches, 1 otherwise.
    """
    from conveyor.cli.progress import make_reporter
    from conveyor.sdk.running import RunHooks
    from conveyor.sdk.running import rerun as do_rerun

    project = ctx.project()
    try:
        result = do_rerun(
            project, run_ref, RunHooks(make_reporter(as_json), None, _cancel_on_signals), keep
        )
    finally:
        _run_is_over()
    if as_json:
        emit_json(
            {
                "original": result.original.id,
                "run": result.run.id,
                "reproduced": result.reproduced,
                "warnings": result.warnings,
                "outputs": [
                    {
                        "step": c.step_id,
                        "path": c.path,
                        "expected": c.expected,
                        "actual": c.actual,
                        "match": c.matches,
                    }
                    for c in result.comparisons
                ],
            }
        )
    else:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for c in result.comparisons:
            mark = "=" if c.matches else "≠"
            actual = (c.actual or "missing")[:12]
            click.echo(
                f"  {mark} {c.step_id} {c.path}  {c.expected[:12]} "
                + ("" if c.matches else f"-> {actual}")
            )
        verdict = "reproduced" if result.reproduced else "NOT reproduced"
        click.echo(f"run {result.original.id} {verdict} by run {result.run.id}")
    sys.exit(0 if result.reproduced else 1)


COMMANDS = [run, rerun]
