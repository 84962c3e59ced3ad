"""``%conveyor ARGS`` in IPython and Jupyter: a CLI command run in the kernel's process.

``%load_ext conveyor`` registers it. The line is split as a shell would (no shell runs
it) and handed to the CLI's own command group. What the command prints shows in the
cell as it comes (a run's progress, a followed log); with ``--json`` it is kept instead
and comes back as Python values (``runs = %conveyor runs --json``). Errors print as the
CLI prints them, never a traceback.
"""

from __future__ import annotations

import codecs
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


class _TextSink(io.RawIOBase):
    """Bytes written to stdout's ``buffer`` (``conveyor logs``), passed on as text to a
    text stream (a kernel's stdout has no ``buffer`` of its own)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self._target = target
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._target.write(self._decoder.decode(chunk))
        self._target.flush()
        return len(chunk)


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
    keep = "--json" in args
    code, printed = run_command(args, keep)
    if code:
        print(f"conveyor: exit code {code}", file=sys.stderr)
    if keep and printed.strip():
        try:
            return json.loads(printed)
        except ValueError:
            print(printed, end="")
    return None


def run_command(args: list[str], keep: bool = False) -> tuple[int, str]:
    """Run the CLI on ``args`` in this process: its exit code, and what it wrote to
    stdout when ``keep`` (else that went to this process's stdout as it came; stderr
    always does)."""
    from conveyor.cli.group import run_click

    buffer = io.BytesIO()
    sink: Any = buffer if keep else _TextSink(sys.stdout)
    out = io.TextIOWrapper(sink, encoding="utf-8", write_through=True)
    code = 0
    with _own_signals(), contextlib.redirect_stdout(out):
        try:
            code = run_click(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.exceptions.Abort:
            code = 130
        except ConveyorError as exc:
            _error(str(exc))
            code = exc.exit_code
    out.flush()
    out.detach()  # the kernel's stdout stays open
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
