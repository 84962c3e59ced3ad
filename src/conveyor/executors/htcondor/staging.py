"""Private scratch directories: what a job's sandbox starts with, and what comes back.

Layout of one invocation's directory (the job's ``initialdir`` on the submit side)::

    in/                  the sandbox's initial content, spooled to the schedd
      <inputs>           hard links (or copies) at their project-relative paths
      .conveyor-runtime/ a Python pipeline's step runner (``runtime``)
    stdout, stderr       retrieved from the spool
    .conveyor-out/       retrieved: the declared outputs the step wrote

Nothing here is shared with the pool: the bindings upload ``in/`` into the schedd's
spool and retrieve the rest from it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.htcondor import runtime
from conveyor.executors.htcondor.description import (
    INPUT_DIR,
    INTERPRETER,
    LOG,
    OUT_DIR,
    STDERR,
    STDOUT,
)
from conveyor.executors.htcondor.runtime import wants_runtime


class Scratch:
    """A directory this executor owns, made on first use and removed by ``cleanup``."""

    def __init__(self, base: str | None) -> None:
        self._base = base
        self._root: Path | None = None

    def prepare(self) -> Path:
        """The scratch root, made on first use (one clear error if it cannot be)."""
        if self._root is None:
            try:
                if self._base:
                    os.makedirs(self._base, exist_ok=True)
                self._root = Path(tempfile.mkdtemp(prefix="conveyor-htcondor-", dir=self._base))
            except OSError as exc:
                raise ExecutorError(
                    f"cannot make a scratch directory for HTCondor jobs: {exc}; "
                    "set [executors.htcondor] scratch to a writable directory"
                ) from exc
        return self._root

    def job_dir(self, name: str) -> Path:
        path = self.prepare() / name
        path.mkdir()
        return path

    def cleanup(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def stage(invocation: Invocation, iwd: Path) -> tuple[bool, list[str]]:
    """Fill ``iwd/in`` with the inputs: (any staged, notes for the step's log)."""
    sandbox = iwd / INPUT_DIR
    staged, notes = False, []
    if wants_runtime(invocation):
        runtime.ship(sandbox)
        staged = True
    for rel in invocation.inputs:
        norm = os.path.normpath(rel)
        if os.path.isabs(norm) or norm.startswith(".."):
            notes.append(f"input {rel} is outside the project: it is not sent to the job")
            continue
        target = sandbox / norm
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(invocation.workdir / norm, target)
        staged = True
    return staged, notes


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copy2(source, target)


def deliver(invocation: Invocation, iwd: Path, outputs: Sequence[str]) -> None:
    """Move the outputs the job wrote to their project-relative places."""
    gathered = iwd / OUT_DIR
    for rel in outputs:
        source = gathered / rel
        if not os.path.lexists(source):
            continue  # the runner reports a declared output that was not written
        target = invocation.workdir / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def interpreter(iwd: Path) -> str | None:
    """What a Python step's job said of its interpreter (``path version``), if anything
    plausible: one short line of printable text."""
    try:
        with open(iwd / INTERPRETER, "rb") as file:
            text = file.read(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not text or "\n" in text or len(text) > 300 or not text.isprintable():
        return None
    return text


def append_log(invocation: Invocation, iwd: Path | None, notes: Sequence[str] = ()) -> None:
    """Add the job's output, then Conveyor's notes to the step's log: the command's
    output as the job sent it back (``LOG``), else what it streamed so far (its stdout,
    retrieved from the spool of a job that did not complete); then its stderr."""
    invocation.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(invocation.log_path, "ab") as log:
        output = STDOUT if iwd is None or not (iwd / LOG).exists() else LOG
        for name in (output, STDERR):
            if iwd is None:
                break
            with contextlib.suppress(FileNotFoundError), open(iwd / name, "rb") as part:
                shutil.copyfileobj(part, log)
        for note in notes:
            log.write(f"conveyor: {note}\n".encode())
