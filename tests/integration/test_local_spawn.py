"""The local executor starts a step the same way whether it uses posix_spawn (the step's
directory is the current one) or subprocess (any other directory): a session of its own,
stdin empty, output appended to its log, SIGPIPE at its default, and none of this
process's descriptors, even one it inherited without close-on-exec."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.executors.base import Completion, Invocation
from conveyor.executors.local import LocalExecutor

PROBE = (
    'echo "sid=$(ps -o sid= -p $$ | tr -d " ") pid=$$"; '
    "read line || echo stdin-empty; "
    "yes | head -n 1; "
    'for fd in $FDS; do if [ -e "/proc/$$/fd/$fd" ]; then echo "fd=$fd"; fi; done; '
    "grep SigIgn /proc/$$/status; "
    "echo to-stderr >&2"
)


@pytest.fixture(params=["posix_spawn", "subprocess"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(the step's directory, the current directory while it starts)."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    here = os.getcwd()
    os.chdir(workdir if request.param == "posix_spawn" else tmp_path)
    try:
        yield workdir, request.param
    finally:
        os.chdir(here)


def _run(executor: LocalExecutor, invocation: Invocation) -> Completion:
    handle = executor.submit(invocation)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = executor.poll([handle], 0.5)
        if done:
            return done[0]
    raise AssertionError("the step did not end within 30 s")


def test_a_step_starts_alike_either_way(where: tuple[Path, str]) -> None:
    workdir, _ = where
    leaked_read, leaked_write = os.pipe()
    os.set_inheritable(leaked_write, True)  # as a parent that leaks a descriptor gives it
    log = workdir / "logs" / "probe.log"
    executor = LocalExecutor()
    try:
        fds = f"{leaked_read} {leaked_write}"
        done = _run(executor, Invocation("r/probe/1", PROBE, {"FDS": fds}, workdir, log))
    finally:
        executor.close()
        os.close(leaked_read)
        os.close(leaked_write)
    text = log.read_text()
    assert done.state == "exited" and done.exit_code == 0, text
    fields = dict(part.split("=") for part in text.splitlines()[0].split())
    assert fields["sid"] == fields["pid"]  # it leads its own session
    assert "stdin-empty" in text
    assert "Broken pipe" not in text  # yes ended by SIGPIPE, silently, as in a shell
    assert "fd=" not in text  # neither our descriptors nor the inherited pipe
    ignored = int(text.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (13 - 1))  # SIGPIPE (13) is not ignored
    assert text.rstrip().endswith("to-stderr")  # stderr goes to the same log, in order


def test_output_is_appended_and_a_missing_shell_is_an_error(where: tuple[Path, str]) -> None:
    workdir, _ = where
    log = workdir / "step.log"
    log.write_text("before\n")
    executor = LocalExecutor()
    try:
        done = _run(executor, Invocation("r/a/1", "echo after; exit 3", {"X": "1"}, workdir, log))
        assert done.exit_code == 3
        assert log.read_text() == "before\nafter\n"
        gone = Invocation("r/b/1", "true", {}, workdir / "no-such-directory", workdir / "b.log")
        with pytest.raises(OSError):
            executor.submit(gone)
    finally:
        executor.close()


def test_a_signal_that_ends_a_step_is_reported(where: tuple[Path, str]) -> None:
    workdir, _ = where
    executor = LocalExecutor()
    try:
        done = _run(executor, Invocation("r/k/1", "kill -KILL $$", {}, workdir, workdir / "k.log"))
    finally:
        executor.close()
    assert done.exit_code == 128 + 9 and done.message == "killed by SIGKILL"
