"""Conveyor's step runner for Python pipelines, sent with the job.

A step of a pipeline written in Python runs ``python -m conveyor.pystep``: the pool's
Python must import ``conveyor.pystep`` and the decorators the pipeline's module uses.
Those modules are standard library only, so the executor copies them, from the
Conveyor that made the plan, into the job's sandbox (``.conveyor-runtime/``) and puts
them first on ``PYTHONPATH``: a pool whose machines have a Python but no Conveyor runs
the steps, with the very code whose digests the plan holds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conveyor.executors.base import Invocation

DIRECTORY = ".conveyor-runtime"
# what ``python -m conveyor.pystep`` imports, and ``import conveyor; @conveyor.step``
FILES = (
    "__init__.py",
    "errors.py",
    "pystep.py",
    "spec/__init__.py",
    "spec/pyflow.py",
    "spec/pytypes.py",
    "spec/pycode.py",
)
_PACKAGE = Path(__file__).resolve().parents[2]  # .../conveyor
_MARK = "-m conveyor.pystep "


def wants_runtime(invocation: Invocation) -> bool:
    """Whether the step is a Python pipeline's (``conveyor.pystep``)."""
    return _MARK in invocation.command


def runtime_env(env: dict[str, str], directory: str = DIRECTORY) -> dict[str, str]:
    """The step's environment with the shipped runtime first on ``PYTHONPATH``: by
    default a relative entry (the job runs in its sandbox, where the runtime was sent);
    in shared-filesystem mode the absolute path of the job's directory."""
    path = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": f"{directory}:{path}" if path else directory}


def ship(sandbox: Path) -> None:
    """Copy the runtime's files into ``sandbox/.conveyor-runtime/conveyor``."""
    target = sandbox / DIRECTORY / "conveyor"
    for name in FILES:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_PACKAGE / name, destination)
        os.chmod(destination, 0o644)
