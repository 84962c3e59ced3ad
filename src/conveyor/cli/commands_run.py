"""run and rerun."""

from __future__ import annotations

import sys
from typing import Any

import click

from conveyor.cli import local_run
from conveyor.cli.context import (
    Context,
    emit_json,
    file_argument,
    file_option,
    payload_option,
)
from conveyor.cli.local_run import RunOptions, cancel_on_signals, run_is_over

pass_context = click.make_pass_decorator(Context)


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
    options = RunOptions(
        parallelism,
        only,
        force,
        params,
        executor,
        no_wait,
        event,
        cron,
        payload,
        target,
        as_json,
        sweep,
    )
    if remote or (sweep and (detach or ref)):
        project = ctx.project()
        if sweep:
            raise click.UsageError("--sweep runs here, one run after another; drop --remote")
        if payload:
            raise click.UsageError(
                "--payload gives a local run its event; a server's run has its trigger's"
            )
        from conveyor.cli.remote import run_remote

        sys.exit(run_remote(project, ref, params, as_json, detach))
    local_run.run_here(ctx, options)


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
            project, run_ref, RunHooks(make_reporter(as_json), None, cancel_on_signals), keep
        )
    finally:
        run_is_over()
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
