"""The real ``dotscience`` 0.8.7 library, in its own virtual environment: it pins
``joblib==0.14.0`` and needs ``datadots-api``, which Conveyor's environment has no use for.

``CONVEYOR_DOTSCIENCE_PYTHON`` names an interpreter that has it; otherwise one is built
once under ``~/.cache/conveyor/oracles/dotscience-0.8.7`` with pip from PyPI."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "0.8.7"


def dotscience_python() -> Path:
    given = os.environ.get("CONVEYOR_DOTSCIENCE_PYTHON")
    if given:
        return Path(given)
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = home / "conveyor" / "oracles" / f"dotscience-{VERSION}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"dotscience-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, whichever test process comes first
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)  # a build that did not finish
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", f"dotscience=={VERSION}"]
            subprocess.run(pip, check=True)
            (venv / ".complete").touch()
    return python
