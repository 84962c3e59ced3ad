"""``conveyor``: the console script's entry point.

``conveyor run`` in the forms scripts and people type (``cli/quick.py``) runs without
importing click, whose import with its command definitions is a tenth of a no-op run;
every other command line, ``--help`` and every mistake go to the click group
(``cli/group.py``), so usage, help and error messages are click's. Imports of the SDK
happen inside each command; errors from the domain become one line and an exit code here.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
from typing import Any

from conveyor.cli.context import EXIT_CANCELLED, echo
from conveyor.errors import ConveyorError

# What a command allocates is mostly what its imports build (modules, classes, functions,
# code): none of it is garbage, yet the collector scans the young generation every 700
# allocations and the older ones with it every ten scans. A first threshold of 20,000 lets
# start-up through with a handful of collections; cycles are still collected.
gc.set_threshold(20_000, 10, 10)


class _Pacified:
    """A stream whose flush ignores a reader that went away, as click leaves stdout and
    stderr after a broken pipe (the interpreter's final flush would fail again)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _quick_run(argv: list[str]) -> bool:
    """Run ``conveyor run`` without click when the quick parser reads ``argv`` (False
    when it does not); interrupts and broken pipes end as under click's ``main``."""
    from conveyor.cli import local_run
    from conveyor.cli.quick import parse_run

    parsed = parse_run(argv, os.environ)
    if parsed is None:
        return False
    try:
        local_run.run_here(*parsed)
    except (EOFError, KeyboardInterrupt):
        echo("", err=True)  # closes the terminal's ^C echo
        echo("conveyor: aborted", err=True)
        sys.exit(EXIT_CANCELLED)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        sys.exit(1)
    return True


def _clicks(exc: Exception) -> None:
    """Map click's own exceptions (only ever raised once click is imported)."""
    click = sys.modules.get("click")
    if click is None:
        return
    if isinstance(exc, click.exceptions.Abort):
        click.echo("conveyor: aborted", err=True)
        sys.exit(EXIT_CANCELLED)
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(exc, click.exceptions.Exit):
        sys.exit(exc.exit_code)


def main() -> None:
    """Console-script entry point: maps Conveyor errors to one line and an exit code."""
    try:
        if not _quick_run(sys.argv[1:]):
            from conveyor.cli.group import click_main

            click_main()
    except ConveyorError as exc:
        echo(f"conveyor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("conveyor: interrupted", err=True)
        sys.exit(EXIT_CANCELLED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        _clicks(exc)
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        echo(
            f"conveyor: internal error: {type(exc).__name__}: {exc} "
            "(set CONVEYOR_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        sys.exit(1)
    finally:
        # The interpreter's exit collects every generation (most objects are modules,
        # classes and functions alive until then): frozen, they are left to the process's end.
        gc.freeze()


if __name__ == "__main__":
    main()
