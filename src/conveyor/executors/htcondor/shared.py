"""Submit descriptions of shared-filesystem mode: pure text, no bindings, no I/O.

When the pool's machines mount the project at the same path as the submit machine, a
job runs in the project directory itself: nothing is spooled, transferred or gathered,
and the step writes its outputs in place, as it would locally. Its stdout and stderr go
to files in its own directory of the run's scratch (which must be on the shared path
too), and every job of the executor writes its events to one job event log there, which
the executor reads instead of asking the schedd.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.htcondor.description import (
    INTERPRETER,
    PYTHON,
    STDERR,
    STDOUT,
    UNBUFFERED,
    ask_interpreter,
    encode_wrapper,
    encoded_arguments,
    environment_command,
    job_labels,
    job_options,
    limits,
    split_env,
)

EVENTS = "events.log"
"""In the scratch root: the job event log of every job this executor submits."""

_UNSAFE_IN_PATHS = ("\n", "\r", "\x00", "$")
"""What a path may not hold in a submit command (a new command, a macro)."""

COMMON_SHARED: dict[str, str] = {
    "executable": "/bin/sh",
    "transfer_executable": "false",
    "should_transfer_files": "NO",
}


def shared_job_commands(invocation: Invocation, job_dir: Path) -> dict[str, str]:
    """The submit commands of one invocation run in place; ``job_dir`` holds its
    stdout, stderr and what it says of its interpreter."""
    for path in (invocation.workdir, job_dir):
        if any(c in str(path) for c in _UNSAFE_IN_PATHS):
            raise ExecutorError(
                f"the HTCondor executor cannot run a job in place at {str(path)!r}: the "
                "submit language would read a line break or $ in it; use filesystem = "
                '"spool" or another directory'
            )
    submitted, exported = split_env(invocation.env)
    wrapper = shared_wrapper(invocation.command, exported, job_dir)
    commands = {
        "initialdir": str(invocation.workdir),
        "arguments": encoded_arguments(encode_wrapper(wrapper)),
        "environment": environment_command(submitted),
        "output": str(job_dir / STDOUT),
        "error": str(job_dir / STDERR),
        **job_labels(invocation),
        **limits(invocation),
    }
    commands.update(job_options(invocation.options))
    return commands


def shared_wrapper(command: str, exported: Mapping[str, str], job_dir: Path) -> str:
    """The job's program: the command like ``/bin/sh -e -c`` in the project directory,
    stderr merged into stdout; nothing to gather, the outputs are already in place."""
    lines = [
        "# written by conveyor: run the step in the shared project directory",
        "exec 2>&1",
        'CONVEYOR_PROJECT_DIR="$PWD"; export CONVEYOR_PROJECT_DIR',
        UNBUFFERED,
    ]
    lines += [f"{name}={shlex.quote(value)}; export {name}" for name, value in exported.items()]
    lines.append(f"code=0; /bin/sh -e -c {shlex.quote(command)} || code=$?")
    if PYTHON in command:
        lines.append(ask_interpreter(shlex.quote(str(job_dir / INTERPRETER))))
    lines.append('exit "$code"')
    return "\n".join(lines) + "\n"
