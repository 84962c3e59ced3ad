"""Conveyor: git-native pipelines for data science.

The public names below are loaded on first use, so ``import conveyor`` (and the CLI's
start-up) stays cheap::

    from conveyor import Project, RunRequest, start_run
    record = start_run(Project.discover(Path(".")), RunRequest(params={"lr": 0.1}))
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConveyorError": "conveyor.errors",
    "UsageError": "conveyor.errors",
    "SpecError": "conveyor.errors",
    "Project": "conveyor.sdk.project",
    "RunRequest": "conveyor.sdk.running",
    "RunHooks": "conveyor.sdk.running",
    "start_run": "conveyor.sdk.running",
    "rerun": "conveyor.sdk.running",
    "compile_project": "conveyor.sdk.running",
    "why": "conveyor.sdk.inspect",
    "lineage": "conveyor.sdk.inspect",
    "run_json": "conveyor.sdk.inspect",
    "fetch_outputs": "conveyor.sdk.maintenance",
    "collect_garbage": "conveyor.sdk.maintenance",
    "RunStatus": "conveyor.domain.states",
    "StepStatus": "conveyor.domain.states",
}

__all__ = list(_EXPORTS)  # kept in sync with _EXPORTS by a test


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
