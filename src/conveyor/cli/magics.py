"""``%conveyor ARGS`` in IPython and Jupyter: a CLI command run in the kernel's process.

``%load_ext conveyor`` registers it. The line is split as a shell would (no shell runs
it) and handed to the CLI's own command group; what the command prints comes back
as the cell's result: parsed JSON with ``--json`` (``runs = %conveyor runs --json``),
else the text, shown as it is. Errors print as the CLI prints them, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import signal
import sys
from collections.abc import Iterator
from typing import Any

import click

from conveyor.errors import ConveyorError

MAX_LINE = 64 * 1024
"""The longest magic line read."""


class Output(str):
    """A command's printed text, shown as it is (not as a quoted string)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self)}</pre>"


def register(ipython: Any) -> None:
    ipython.register_magic_function(conveyor_magic, magic_kind="line", magic_name="conveyor")


def conveyor_magic(line: str) -> Any:
    """Run a Conveyor command here: ``%conveyor runs``, ``%conveyor run -p lr=0.1``,
    ``%conveyor show latest --json`` (JSON comes back as Python values)."""
    if len(line) > MAX_LINE:
        _error(f"the command line is longer than {MAX_LINE} characters")
        return None
    try:
        args = shlex.split(line)
    except ValueError as exc:
        _error(f"cannot split the command line: {exc}")
        return None
    code, printed = run_command(args)
    if code:
        print(f"conveyor: exit code {code}", file=sys.stderr)
    if "--json" in args and printed.strip():
        with contextlib.suppress(ValueError):
            return json.loads(printed)
    return Output(printed) if printed else None


def run_command(args: list[str]) -> tuple[int, str]:
    """Run the CLI on ``args`` in this process: the exit code and what went to stdout
    (stderr passes through: progress shows as it happens)."""
    from conveyor.cli.main import cli

    buffer = io.BytesIO()
    out = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    code = 0
    with _own_signals(), contextlib.redirect_stdout(out):
        try:
            cli.main(args=args, prog_name="conveyor", standalone_mode=False)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.exceptions.Abort:
            code = 130
        except ConveyorError as exc:
            _error(str(exc))
            code = exc.exit_code
    out.flush()
    return code, buffer.getvalue().decode("utf-8", errors="replace")


def _error(message: str) -> None:
    print(f"conveyor: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _own_signals() -> Iterator[None]:
    """``conveyor run`` sets SIGINT and SIGTERM handlers for its run; the kernel gets
    its own back when the command ends."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
