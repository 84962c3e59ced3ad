"""Invocations as HTCondor submit descriptions: pure text, no bindings, no I/O.

Every job runs the worker's ``/bin/sh`` (``transfer_executable = false``) on a small
wrapper script. The wrapper runs the step's command exactly as ``/bin/sh -e -c COMMAND``,
merges stderr into stdout, then moves the declared outputs that exist into
``.conveyor-out/``: the output the job transfers back, so a step that fails before
writing its outputs still completes with its own exit code instead of being held.

The command's output goes twice through ``tee``: to the job's stdout, streamed to the
schedd's spool as it is written (so a timed-out, cancelled or held job's output so far
can be retrieved), and to ``.conveyor-log``, transferred back with the outputs (the
schedd replaces a completed job's spool directory with its output sandbox, which drops
the streamed copy).

The wrapper travels base64-encoded in ``arguments``, so the command never meets the
submit language's quoting or macros, and a step without inputs spools no file at all.
The environment goes through ``environment``, with ``$`` escaped as ``$(DOLLAR)``.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation

OPTION_PREFIX = "htcondor."
OUT_DIR = ".conveyor-out"
"""In the sandbox: the declared outputs, gathered for the transfer back."""
LOG = ".conveyor-log"
"""In the sandbox: the command's output (stdout and stderr), for the transfer back."""
INTERPRETER = f"{OUT_DIR}/.conveyor-python"
"""In the sandbox, for a Python step: the worker's interpreter that the step's command
chose (``$CONVEYOR_PYTHON`` or ``python3``) and its version, one line."""
PYTHON = "${CONVEYOR_PYTHON:-python3}"
"""How a Python step's command names its interpreter (``spec/pyspec.py``,
``plan/datums.py``)."""
UNBUFFERED = 'PYTHONUNBUFFERED="${PYTHONUNBUFFERED-1}"; export PYTHONUNBUFFERED'
"""Python steps flush each line (unless the step says otherwise): a cancelled, timed-out
or held step's log shows how far it got."""
_ASK_VERSION = "import sys; print(sys.version.split()[0])"
_CODE = ".conveyor-code"
"""In the sandbox: the command's exit code, out of the pipe into ``tee``."""
INPUT_DIR = "in"
"""In the scratch dir: what the sandbox starts with (inputs at their relative paths)."""
STDOUT, STDERR = "stdout", "stderr"
MAX_WRAPPER = 96 * 1024
"""Bytes of encoded wrapper: one argument may not exceed 128 KiB on Linux."""
# decode the wrapper ($1) and run it in this shell; $ is escaped for the submit language
_BOOTSTRAP = 'eval ""$(DOLLAR)(printf %s ""$(DOLLAR)1"" | base64 -d)""'

COMMON: dict[str, str] = {
    "executable": "/bin/sh",
    "transfer_executable": "false",
    "transfer_output_files": f"{OUT_DIR},{LOG}",
    "should_transfer_files": "YES",
    "when_to_transfer_output": "ON_EXIT",
    "output": STDOUT,
    "error": STDERR,
    # written to the schedd's spool as the job runs: a timed-out, cancelled or held job's
    # output so far can be retrieved (ON_EXIT_OR_EVICT brings nothing back on a hold)
    # while the job has not completed
    "stream_output": "true",
    "stream_error": "true",
}
MANAGED = frozenset(
    name.lower()
    for name in (
        *COMMON,
        "initialdir",
        "iwd",
        "environment",
        "env",
        "getenv",
        "input",
        "log",
        "args",
        "preserve_relative_paths",
        "transfer_output_remaps",
        "leave_in_queue",
        "queue",
        "+ConveyorKey",
        "+ConveyorExecutorId",
        "MY.ConveyorKey",
        "MY.ConveyorExecutorId",
    )
)
_COMMAND_NAME = re.compile(r"^(\+|MY\.)?[A-Za-z_][A-Za-z0-9_.]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,/\[\]:+-]")
# what a submit command cannot carry, and what the schedd would substitute at match time
_NOT_SUBMITTABLE = ("\n", "\r", "\x00", "$$")


def job_options(options: Mapping[str, str]) -> dict[str, str]:
    """The ``htcondor.<submit command>`` pass-through entries, checked."""
    commands: dict[str, str] = {}
    for key, value in sorted(options.items()):
        if not key.startswith(OPTION_PREFIX):
            continue
        name = key[len(OPTION_PREFIX) :]
        if not _COMMAND_NAME.fullmatch(name):
            raise ExecutorError(f"{key} is not a valid HTCondor submit command name")
        if name.lower() in MANAGED:
            raise ExecutorError(
                f"{key} is set by Conveyor's HTCondor executor (it moves files and runs "
                "the command itself); remove it from the job's htcondor table"
            )
        if any(c in value for c in "\n\r\x00"):
            raise ExecutorError(f"{key} must be one line")
        commands[name] = value.strip()
    return commands


def split_env(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(variables for the ``environment`` command, variables the wrapper exports)."""
    submitted: dict[str, str] = {}
    exported: dict[str, str] = {}
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ExecutorError(f"environment variable name {name!r} cannot be passed on")
        target = exported if any(s in value for s in _NOT_SUBMITTABLE) else submitted
        target[name] = value
    return submitted, exported


def environment_command(env: Mapping[str, str]) -> str:
    """The value of the ``environment`` submit command (the quoted new syntax)."""
    parts = []
    for name, value in sorted(env.items()):
        escaped = value.replace("$", "$(DOLLAR)").replace("'", "''")
        parts.append(f"{name}='{escaped}'")
    text = " ".join(parts).replace('"', '""')
    return f'"{text}"'


def job_commands(invocation: Invocation, initialdir: str, inputs: bool) -> dict[str, str]:
    """The submit commands that belong to this invocation alone."""
    submitted, exported = split_env(invocation.env)
    wrapper = wrapper_script(invocation.command, exported, top_outputs(invocation.outputs))
    encoded = encode_wrapper(wrapper)
    commands = {
        "initialdir": initialdir,
        "arguments": encoded_arguments(encoded),
        "environment": environment_command(submitted),
        **job_labels(invocation),
    }
    if inputs:
        # a trailing slash sends the directory's contents: the sandbox is the project's
        # relative layout (preserve_relative_paths is lost when the schedd spools in 23.x)
        commands["transfer_input_files"] = f"{INPUT_DIR}/"
    commands.update(limits(invocation))
    commands.update(job_options(invocation.options))
    return commands


def encode_wrapper(wrapper: str) -> str:
    """The wrapper as the job's argument, within what one argument may hold."""
    encoded = base64.b64encode(wrapper.encode()).decode("ascii")
    if len(encoded) > MAX_WRAPPER:
        raise ExecutorError(
            f"the step's command is too long for the HTCondor executor ({len(wrapper)} bytes "
            "with its environment); put it in a script file and declare that as an input"
        )
    return encoded


def encoded_arguments(encoded: str) -> str:
    """``arguments``: the bootstrap that decodes and runs the wrapper."""
    return f"\"-c '{_BOOTSTRAP}' conveyor-job {encoded}\""


def job_labels(invocation: Invocation) -> dict[str, str]:
    """The attributes that name the job: its invocation key and batch name."""
    return {
        "+ConveyorKey": classad_string(key_label(invocation.key)),
        "batch_name": "conveyor-" + _LABEL_UNSAFE.sub("_", invocation.key.split("/")[0]),
    }


def limits(invocation: Invocation) -> dict[str, str]:
    """What the job asks of its slot, and the bound on its run time."""
    resources = invocation.resources
    commands = {"request_cpus": str(max(1, math.ceil(resources.cpus)))}
    if resources.memory_mb:
        commands["request_memory"] = str(resources.memory_mb)
    if resources.gpus > 0:
        commands["request_gpus"] = str(resources.gpus)
    if resources.disk_mb:
        commands["request_disk"] = str(resources.disk_mb * 1024)  # KB
    if invocation.timeout:
        # the runner cancels first; this only stops jobs a dead client left behind
        commands["allowed_execute_duration"] = str(math.ceil(invocation.timeout) + 60)
    return commands


def key_label(key: str) -> str:
    """The invocation key as the job's ``ConveyorKey`` attribute holds it."""
    return _LABEL_UNSAFE.sub("_", key)


def classad_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_outputs(outputs: Iterable[str]) -> None:
    """Refuse a declared output the wrapper would overwrite or gather into itself."""
    for path in outputs:
        first = os.path.normpath(path).split("/")[0]
        if first in (OUT_DIR, LOG, _CODE):
            raise ExecutorError(
                f"output {path!r} uses a name the HTCondor executor keeps for itself "
                f"({first}); rename it"
            )


def top_outputs(outputs: Iterable[str]) -> list[str]:
    """Declared outputs, normalised, without those inside another declared output."""
    paths = sorted({os.path.normpath(p) for p in outputs})
    kept: list[str] = []
    for path in paths:
        if path in (".", "") or path.startswith(("..", "/")):
            raise ExecutorError(f"output {path!r} is not a project-relative path")
        if not any(path.startswith(parent + "/") for parent in kept):
            kept.append(path)
    return kept


def wrapper_script(command: str, exported: Mapping[str, str], outputs: Sequence[str]) -> str:
    """The job's program: run the command like ``/bin/sh -e -c``, gather the outputs."""
    lines = [
        "# written by conveyor: run the step, then gather its declared outputs",
        "exec 2>&1",
        'CONVEYOR_PROJECT_DIR="$PWD"; export CONVEYOR_PROJECT_DIR',
        UNBUFFERED,
    ]
    lines += [f"{name}={shlex.quote(value)}; export {name}" for name, value in exported.items()]
    lines += [
        f"(code=0; /bin/sh -e -c {shlex.quote(command)} || code=$?; echo $code >{_CODE})"
        f" 2>&1 | tee {LOG}",
        f"code=$(cat {_CODE} 2>/dev/null) || code=1",  # no code: the shell itself failed
        f"rm -f {_CODE}",
        f"mkdir -p {OUT_DIR}",
    ]
    if PYTHON in command:  # before the outputs: a declared output of that name wins
        lines.append(ask_interpreter(INTERPRETER))
    for path in outputs:
        source = shlex.quote(path)
        parent = shlex.quote(os.path.join(OUT_DIR, os.path.dirname(path)))
        target = shlex.quote(os.path.join(OUT_DIR, path))
        lines.append(
            f"if [ -e {source} ] || [ -L {source} ]; then "
            f"mkdir -p {parent} && mv {source} {target}; fi"
        )
    lines.append('exit "$code"')
    return "\n".join(lines) + "\n"


def ask_interpreter(target: str) -> str:
    """The wrapper's line that writes the Python a step's command chose, and its
    version, to ``target``: found as the command's shell finds it (a job may have no
    PATH, and then Python cannot tell its own ``sys.executable``)."""
    ask = shlex.quote(_ASK_VERSION)
    return (
        f'py=$(command -v "{PYTHON}") && v=$("$py" -c {ask} 2>/dev/null) && echo "$py $v" >{target}'
    )


@dataclass
class ClusterPlan:
    """One schedd submit of ``len(members)`` procs: member ``i`` is proc ``i``."""

    description: dict[str, str]
    members: list[str] = field(default_factory=list)
    """Invocation keys, in proc id order."""


def plan_clusters(
    jobs: Sequence[tuple[str, dict[str, str]]], common: Mapping[str, str]
) -> list[ClusterPlan]:
    """Group invocations into as few clusters as possible.

    Invocations go into one cluster when they set the same submit commands with the same
    pass-through option values (so a bad option fails only the steps that asked for it).
    """
    groups: dict[tuple[object, ...], list[tuple[str, dict[str, str]]]] = {}
    for key, commands in jobs:
        options = tuple(sorted((k, v) for k, v in commands.items() if k.lower() not in _PER_JOB))
        groups.setdefault((tuple(sorted(commands)), options), []).append((key, commands))
    return [_cluster(members, common) for members in groups.values()]


_PER_JOB = frozenset(
    {
        "initialdir",
        "arguments",
        "transfer_input_files",
        "environment",
        "+conveyorkey",
        "batch_name",
        "request_cpus",
        "request_memory",
        "request_gpus",
        "request_disk",
        "allowed_execute_duration",
        "output",  # shared-filesystem mode: in the job's own directory
        "error",
    }
)


def _cluster(members: list[tuple[str, dict[str, str]]], common: Mapping[str, str]) -> ClusterPlan:
    """Shared values are written once; a value that differs between members is one macro
    per proc, picked by ``$(ProcId)`` (much faster to submit than itemdata rows)."""
    description = dict(common)
    for index, name in enumerate(members[0][1]):
        values = [commands[name] for _, commands in members]
        if len(set(values)) == 1:
            description[name] = values[0]
            continue
        for proc, value in enumerate(values):
            description[f"conveyor_v{index}_{proc}"] = value
        description[name] = f"$(conveyor_v{index}_$(ProcId))"
    return ClusterPlan(description, [key for key, _ in members])
