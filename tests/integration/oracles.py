"""Real packages used as oracles, each in its own virtual environment (their pins are
theirs, not Conveyor's): built once under ``~/.cache/conveyor/oracles/NAME-VERSION`` with
pip from PyPI, unless an environment variable names an interpreter that has the package."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path


def oracle_python(package: str, version: str, given_by: str) -> Path:
    """An interpreter with ``package==version``: ``$given_by``, or the cached venv's."""
    given = os.environ.get(given_by)
    if given:
        return Path(given)
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = home / "conveyor" / "oracles" / f"{package}-{version}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{package}-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, whichever test process comes first
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)  # a build that did not finish
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", f"{package}=={version}"]
            subprocess.run(pip, check=True)
            (venv / ".complete").touch()
    return python
