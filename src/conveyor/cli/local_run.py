"""``conveyor run`` here: what the click command and the quick parser (``cli/quick.py``)
both call once they have read the command line. Imports no click."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from typing import Any, NamedTuple

from conveyor.cli.context import EXIT_CANCELLED, Context, echo, emit_json, param_values


class RunOptions(NamedTuple):
    """The options of ``conveyor run`` for a run in this checkout (``--remote`` is the
    click command's alone)."""

    parallelism: int | None
    only: tuple[str, ...]
    force: bool
    params: tuple[str, ...]
    executor: str | None
    no_wait: bool
    event: str | None
    cron: str
    payload: dict[str, Any]
    target: str
    as_json: bool
    sweep: bool


def _warn(message: str) -> None:
    echo(f"warning: {message}", err=True)


def _on_wait(holder: str) -> None:
    echo(f"conveyor: another run is in progress here ({holder}); waiting for it…", err=True)


def _exit_code(status: str) -> int:
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(status, 1)


CANCELLING = "\nconveyor: cancelling: removing the run's steps from its executors…\n"
STILL_CANCELLING = (
    "conveyor: still cancelling: the run's jobs are being removed; it ends when they "
    "are (kill -9 would leave them queued)\n"
)


def cancel_on_signals(runner: Any) -> None:
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


def collect_from_start(runner: Any) -> None:
    """The run's loop starts: what was loaded (the modules, the plan, thousands of
    objects that live as long as the run) is set aside from the cyclic collector, which
    would otherwise walk it again at each of its full passes, and collecting resumes
    for what the loop makes. Then Ctrl-C is wired as :func:`cancel_on_signals` says."""
    gc.freeze()
    gc.enable()
    cancel_on_signals(runner)


def run_is_over() -> None:
    """Once the run is finalised and its executors closed, a late Ctrl-C has nothing
    left to cancel: it is ignored, not left to the interpreter's exit (which restores
    the default handler, so the process would die by the signal, not exit 130)."""
    if getattr(signal.getsignal(signal.SIGINT), "conveyor_cancels", False):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_here(context: Context, options: RunOptions) -> None:
    """Run the pipeline of ``context`` (or a sweep of runs); exits with the run's code."""
    # nothing is collected until the run's loop starts (``collect_from_start``): loading
    # the plan and the records makes objects that live through the run, not garbage
    gc.disable()
    try:
        _run_here(context, options)
    finally:  # as before the run, for a caller that goes on (a test's CLI runner)
        gc.unfreeze()
        gc.enable()


def _run_here(context: Context, options: RunOptions) -> None:
    from conveyor.cli.progress import make_reporter
    from conveyor.sdk.running import RunHooks, RunRequest, start_run

    project = context.project()
    reporter = make_reporter(options.as_json)
    given = param_values(options.params)
    request = RunRequest(
        params=given,
        only=options.only,
        force=options.force,
        parallelism=options.parallelism,
        executor=options.executor,
        wait=not options.no_wait,
        event=options.event,
        cron=options.cron,
        target=options.target,
        payload=options.payload,
    )
    hooks = RunHooks(reporter, _on_wait, collect_from_start, _warn)
    if options.sweep:  # many runs: the collector as usual
        gc.enable()
        from conveyor.cli.sweep import run_sweep_command

        def new_hooks() -> RunHooks:
            return RunHooks(make_reporter(options.as_json), _on_wait, cancel_on_signals, _warn)

        try:
            code = run_sweep_command(
                project, request, given, new_hooks, options.as_json, options.parallelism
            )
        finally:
            run_is_over()
        sys.exit(code)
    try:
        record = start_run(project, request, hooks)
    finally:
        run_is_over()
    if options.as_json:
        from conveyor.sdk.inspect import run_json

        emit_json(run_json(project, record))
    sys.exit(_exit_code(str(record.status)))
