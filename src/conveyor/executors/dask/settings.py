"""The ``[executors.dask]`` settings table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ProjectError

DEFAULT_SCHEDULER = "tcp://127.0.0.1:8786"
_SCHEMES = ("tcp://", "tls://", "ws://", "wss://")


@dataclass(frozen=True)
class DaskSettings:
    scheduler: str = DEFAULT_SCHEDULER
    """The scheduler's address; loopback unless the project names another."""
    parallelism: int = 64
    """Invocations in flight when the user does not say (-j); the scheduler queues the rest."""
    connect_timeout: float = 10.0
    """Seconds to reach the scheduler before the run gives up."""
    grace_seconds: float = 5.0
    """Between SIGTERM and SIGKILL when a step is cancelled."""
    scratch_dir: str | None = None
    """Where tasks make their scratch directories on the workers (default: their TMPDIR)."""
    no_capacity_timeout: float = 300.0
    """Seconds the cluster may have no worker before the steps waiting for one fail: from
    when it last had one, or from the connection plus ``start_grace`` before it ever had
    one."""
    start_grace: float = 60.0
    """Seconds a new cluster may take to connect its first worker before
    ``no_capacity_timeout`` starts counting (dask-jobqueue workers wait in a batch queue)."""

    @staticmethod
    def parse(table: Mapping[str, Any]) -> DaskSettings:
        known = set(DaskSettings.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise ProjectError(
                f"unknown setting executors.dask.{unknown[0]} (known: {', '.join(sorted(known))})"
            )
        try:
            settings = DaskSettings(
                scheduler=str(table.get("scheduler", DEFAULT_SCHEDULER)),
                parallelism=int(table.get("parallelism", 64)),
                connect_timeout=float(table.get("connect_timeout", 10.0)),
                grace_seconds=float(table.get("grace_seconds", 5.0)),
                scratch_dir=str(table["scratch_dir"]) if table.get("scratch_dir") else None,
                no_capacity_timeout=float(table.get("no_capacity_timeout", 300.0)),
                start_grace=float(table.get("start_grace", 60.0)),
            )
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"executors.dask: {exc}") from exc
        if not settings.scheduler.startswith(_SCHEMES):
            # a bare path or scheme-less text would make Client start a cluster of its own
            raise ProjectError(
                f"executors.dask.scheduler must be a scheduler address "
                f"({', '.join(s + 'HOST:PORT' for s in _SCHEMES[:2])}), "
                f"not {settings.scheduler!r}"
            )
        timeouts = (settings.connect_timeout, settings.no_capacity_timeout)
        graces = (settings.grace_seconds, settings.start_grace)
        if settings.parallelism < 1 or min(timeouts) <= 0 or min(graces) < 0:
            raise ProjectError("executors.dask: parallelism and timeouts must be positive")
        return settings
