"""Conveyor: git-native pipelines for data science.

The public names below are loaded on first use, so ``import conveyor`` (and the CLI's
start-up) stays cheap::

    import conveyor
    client = conveyor.Client()          # the project here; Client(url, token=...) a server
    run = client.run({"lr": 0.1})       # waits, with a progress bar
    run.output("out/model.csv").to_pandas()

Pipelines can be written in Python: ``@conveyor.step`` on typed functions,
``@conveyor.pipeline`` on the function that calls them (``conveyor run pipeline.py``,
``client.run(my_pipeline, x=3)``).

In Jupyter, ``%load_ext conveyor`` adds ``%conveyor ARGS``: the CLI's commands, in the
kernel (``%conveyor runs``, ``%conveyor run -p lr=0.1``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "conveyor.sdk.client",
    "Run": "conveyor.sdk.client",
    "RunList": "conveyor.sdk.client",
    "Step": "conveyor.sdk.client",
    "Output": "conveyor.sdk.client",
    "WaitTimeout": "conveyor.sdk.client",
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
    "log_metric": "conveyor.tracking",
    "log_param": "conveyor.tracking",
    "log_artifact": "conveyor.tracking",
    "step": "conveyor.spec.pyflow",
    "pipeline": "conveyor.spec.pyflow",
    "RunStatus": "conveyor.domain.states",
    "StepStatus": "conveyor.domain.states",
}

_MAGICS = "conveyor.cli.magics"

__all__ = list(_EXPORTS)  # kept in sync with _EXPORTS by a test


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext conveyor``: registers the ``%conveyor`` line magic (the CLI's
    commands; loaded by name, like the exports, so the library never imports the CLI)."""
    importlib.import_module(_MAGICS).register(ipython)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
