"""The real ``dotscience`` 0.8.7 library, in its own virtual environment: it pins
``joblib==0.14.0`` and needs ``datadots-api``, which Conveyor's environment has no use for.

``CONVEYOR_DOTSCIENCE_PYTHON`` names an interpreter that has it; otherwise one is built
once under ``~/.cache/conveyor/oracles/dotscience-0.8.7`` with pip from PyPI."""

from __future__ import annotations

from pathlib import Path

from tests.integration import oracles

VERSION = "0.8.7"


def dotscience_python() -> Path:
    return oracles.oracle_python("dotscience", VERSION, "CONVEYOR_DOTSCIENCE_PYTHON")
