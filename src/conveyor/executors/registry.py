"""Find an executor class by name: built-ins first, then the ``conveyor.executors``
entry-point group for plugins. Nothing is imported until it is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from conveyor.errors import ExecutorError, UsageError
from conveyor.executors.base import Executor

BUILTIN = {
    "local": "conveyor.executors.local:LocalExecutor",
    "htcondor": "conveyor.executors.htcondor:HTCondorExecutor",
    "spark": "conveyor.executors.spark:SparkExecutor",
    "dask": "conveyor.executors.dask:DaskExecutor",
}
EXTRAS = {"htcondor": "htcondor", "spark": "spark", "dask": "dask"}
REQUIRED = ("submit", "poll", "cancel", "close", "recover", "started", "capacity")


def available() -> list[str]:
    from importlib.metadata import entry_points

    names = set(BUILTIN) | {ep.name for ep in entry_points(group="conveyor.executors")}
    return sorted(names)


def load_executor(name: str, settings: Mapping[str, Any] | None = None) -> Executor:
    """Instantiate executor ``name`` with its settings table from the project config."""
    target = BUILTIN.get(name) or _entry_point(name)
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(name, name)
        raise ExecutorError(
            f"the {name} executor needs packages that are not installed ({exc.name}); "
            f"install them with: pip install 'conveyor[{extra}]'"
        ) from exc
    factory = getattr(module, attr)
    missing = [m for m in REQUIRED if not callable(getattr(factory, m, None))]
    if missing:
        raise ExecutorError(f"executor {name!r} does not implement {', '.join(missing)}")
    return cast(Executor, factory(dict(settings or {})))


def _entry_point(name: str) -> str:
    from importlib.metadata import entry_points

    found = entry_points(group="conveyor.executors", name=name)
    for ep in found:
        return str(ep.value)
    raise UsageError(f"unknown executor {name!r}; available: {', '.join(available())}")
