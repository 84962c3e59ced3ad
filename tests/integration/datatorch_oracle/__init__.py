"""The real ``datatorch`` 0.8.0 package as an oracle, in its own virtual environment:
its pins (Jinja2 2.x, urllib3 1.x, websockets 10) cannot share Conveyor's.

``CONVEYOR_DATATORCH_PYTHON`` names an interpreter that has it; otherwise one is built
once under ``~/.cache/conveyor/oracles/datatorch-0.8.0`` with pip from PyPI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.integration import oracles

VERSION = "0.8.0"
DRIVER = Path(__file__).with_name("driver.py")


def oracle_python() -> Path:
    return oracles.oracle_python("datatorch", VERSION, "CONVEYOR_DATATORCH_PYTHON")


def run_pipeline(path: Path, trigger: dict[str, Any], home: Path) -> dict[str, Any]:
    """Each job of the pipeline file run by DataTorch's local ``Job`` (what ``datatorch
    pipeline run`` does, with the trigger's inputs): ``{job: {"outputs": {step name:
    outputs}} or {"error": type, "message": text}}``."""
    result = home / "oracle.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "DATATORCH_DIR": str(home / "datatorch"),
        "DATATORCH_RUNNER_PATH": str(home / "runner"),
    }
    done = subprocess.run(
        [str(oracle_python()), str(DRIVER), str(path), json.dumps(trigger), str(result)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(result.read_text())
    return data
