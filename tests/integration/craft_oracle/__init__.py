"""The real ``craft-ai-sdk`` packages (0.74.7, the latest, and 0.72.1, the last with
steps) as oracles, each in its own virtual environment: their pins (``requests``,
``weaviate-client``...) are theirs, not Conveyor's.

``CONVEYOR_CRAFT_SDK_<version with underscores>`` names an interpreter that has one;
otherwise it is built once under ``~/.cache/conveyor/oracles/craft-ai-sdk-VERSION`` with
pip from PyPI. ``driver.py`` runs a scenario with the unmodified client and prints what
it saw as JSON."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

VERSIONS = ("0.74.7", "0.72.1")
DRIVER = Path(__file__).with_name("driver.py")


def oracle_python(version: str) -> Path:
    given = os.environ.get(f"CONVEYOR_CRAFT_SDK_{version.replace('.', '_')}")
    if given:
        return Path(given)
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = home / "conveyor" / "oracles" / f"craft-ai-sdk-{version}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"craft-ai-sdk-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, whichever test process comes first
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)  # a build that did not finish
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", f"craft-ai-sdk=={version}"]
            subprocess.run(pip, check=True)
            (venv / ".complete").touch()
    return python


def run_scenario(version: str, scenario: str, settings: dict[str, Any], cwd: Path) -> Any:
    """One scenario of ``driver.py`` with the real SDK; what it returned (JSON)."""
    done = subprocess.run(
        [str(oracle_python(version)), str(DRIVER), scenario, json.dumps(settings)],
        cwd=cwd,
        env={**os.environ, "SDK_VERBOSE_LOG": "false", "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
