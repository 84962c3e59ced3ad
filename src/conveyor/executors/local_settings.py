"""The local executor's ``[executors.local]`` table, read without loading the executor:
a run checks it and learns its default parallelism before it knows whether any step must
run (``registry.DeferredLocal``), and ``LocalExecutor`` reads it the same way."""

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from conveyor.errors import ExecutorError


class LocalSettings(NamedTuple):
    grace: float
    """Seconds between SIGTERM and SIGKILL when a step is cancelled."""
    parallelism: int
    """Steps at once when the user does not say (-j): the setting, else the core count."""
    sandbox: Mapping[str, Any] | None
    """The ``sandbox`` table (``executors.sandbox.Sandbox.from_setting``), or None."""


def local_settings(settings: Mapping[str, Any] | None) -> LocalSettings:
    """The table's values, each checked: a bad one is one sentence."""
    settings = settings or {}
    try:  # as the executor has always read them: numbers, or text of one
        grace = float(settings.get("grace_seconds", 5.0))
        parallelism = int(settings.get("parallelism", 0))
    except (TypeError, ValueError) as exc:
        raise ExecutorError(f"a local executor setting is not a number: {exc}") from None
    sandbox = settings.get("sandbox")
    if sandbox and not isinstance(sandbox, Mapping):
        raise ExecutorError("the local executor's sandbox setting must be a table")
    for key in ("hide", "readable"):
        paths = sandbox.get(key, ()) if sandbox else ()
        if not isinstance(paths, list | tuple):
            raise ExecutorError(f"the local executor's sandbox.{key} setting must be a list")
    return LocalSettings(grace, parallelism or os.cpu_count() or 1, sandbox if sandbox else None)
