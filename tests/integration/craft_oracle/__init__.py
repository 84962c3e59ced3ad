"""The real ``craft-ai-sdk`` packages (0.74.7, the latest, and 0.72.1, the last with
steps) as oracles, each in its own virtual environment: their pins (``requests``,
``weaviate-client``...) are theirs, not Conveyor's.

``CONVEYOR_CRAFT_SDK_<version with underscores>`` names an interpreter that has one;
otherwise it is built once under ``~/.cache/conveyor/oracles/craft-ai-sdk-VERSION`` with
pip from PyPI. ``driver.py`` runs a scenario with the unmodified client and prints what
it saw as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.integration import oracles

VERSIONS = ("0.74.7", "0.72.1")
DRIVER = Path(__file__).with_name("driver.py")


def oracle_python(version: str) -> Path:
    given_by = f"CONVEYOR_CRAFT_SDK_{version.replace('.', '_')}"
    return oracles.oracle_python("craft-ai-sdk", version, given_by)


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
