"""Find an executor class by name: built-ins first, then the ``conveyor.executors``
entry-point group for plugins. Nothing is imported until it is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from conveyor.errors import ExecutorError, UsageError
from conveyor.executors.local_settings import local_settings

if TYPE_CHECKING:  # a no-op run loads no executor module (``run_executor``)
    from conveyor.executors.base import (
        Capacity,
        Completion,
        Executor,
        Handle,
        Invocation,
        Recovered,
    )

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
    return cast("Executor", factory(dict(settings or {})))


def _entry_point(name: str) -> str:
    from importlib.metadata import entry_points

    found = entry_points(group="conveyor.executors", name=name)
    for ep in found:
        return str(ep.value)
    raise UsageError(f"unknown executor {name!r}; available: {', '.join(available())}")


def run_executor(name: str, settings: Mapping[str, Any] | None = None) -> Executor:
    """The executor of a run: ``load_executor``'s, except that the local executor (every
    run's default) is made when a step first uses it; its settings are checked now."""
    if name == "local":
        return DeferredLocal(settings)
    return load_executor(name, settings)


class DeferredLocal:
    """The local executor, made at its first use: a run whose steps are all cache hits
    never loads ``executors.local`` and ``sandbox``. What a run asks before it schedules
    (the default parallelism, whether it starts containers) is answered from the
    settings, checked here (a bad one is an error before the run starts)."""

    name = "local"
    starts_containers = True

    def __init__(self, settings: Mapping[str, Any] | None) -> None:
        self._settings = dict(settings or {})
        self.default_parallelism = local_settings(self._settings).parallelism
        self._made: Executor | None = None

    def _executor(self) -> Executor:
        if self._made is None:
            self._made = load_executor("local", self._settings)
        return self._made

    def submit(self, invocation: Invocation) -> Handle:
        return self._executor().submit(invocation)

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        return self._executor().poll(handles, timeout)

    def cancel(self, handles: Sequence[Handle]) -> None:
        self._executor().cancel(handles)

    def close(self) -> None:
        if self._made is not None:  # never made: nothing to release
            self._made.close()

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        return self._executor().recover(handles)

    def started(self, handles: Sequence[Handle]) -> list[str]:
        return self._executor().started(handles)

    def capacity(self) -> Capacity:
        return self._executor().capacity()
