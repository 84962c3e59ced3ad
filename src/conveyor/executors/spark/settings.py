"""The ``[executors.spark]`` settings table, the SparkConf built from it, and the master probe."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ExecutorError, ProjectError
from conveyor.spec.expressions import value_text

_LOCAL = re.compile(r"^local(?:\[(\d+|\*)\])?$")  # local, local[N], local[*]: no retries
_IN_PROCESS = re.compile(r"^local(?:-cluster)?(?:\[[^\]]*\])?$")  # the driver's own machine
_DRIVER_ADDRESS = ("spark.driver.host", "spark.driver.bindAddress")
TASK_ATTEMPTS = 4
"""Spark's own task attempts: a task whose Python worker died is started again, and the
new attempt finds its invocation already reported lost (the runner's ``retries`` apply)."""


@dataclass(frozen=True)
class SparkSettings:
    master: str = "local[*]"
    app_name: str = "conveyor"
    conf: dict[str, str] = field(default_factory=dict)
    """Passed to SparkConf as given (after Conveyor's defaults, so it wins)."""
    parallelism: int = 1000
    """Invocations in flight when the user does not say (-j)."""
    start_timeout: float = 30.0
    """Seconds the SparkContext may take to start before the run gives up."""
    connect_timeout: float = 5.0
    """Seconds to wait for the master's port to answer before anything starts."""
    grace_seconds: float = 5.0
    """Between SIGTERM and SIGKILL when a step is cancelled."""
    scratch_dir: str | None = None
    """Where tasks make their scratch directories on the workers (default: their TMPDIR)."""
    no_capacity_timeout: float = 300.0
    """Seconds a cluster master may have no executor at all (its workers stopped) before
    the steps waiting for one fail with that reason: from when it last had one, or from
    the context's start plus ``start_grace`` before it ever had one."""
    start_grace: float = 60.0
    """Seconds a new application may wait for its first executor before
    ``no_capacity_timeout`` starts counting (YARN and Kubernetes allocate them slowly)."""
    task_port: int = 0
    """The port of Conveyor's task listener on the driver's host (0: any free port); pin
    it, like ``spark.driver.port``, where a firewall stands between nodes and driver."""
    datums_per_task: int = 0
    """Step invocations (datums, matrix entries) one Spark task runs in turn; 0 is
    ``"auto"``: about three tasks per core for each batch (``packing``)."""

    @staticmethod
    def parse(table: Mapping[str, Any]) -> SparkSettings:
        known = set(SparkSettings.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise ProjectError(
                f"unknown setting executors.spark.{unknown[0]} (known: {', '.join(sorted(known))})"
            )
        if str(table.get("master", "")).lower().startswith("sc://"):
            # the URL may hold a token: not repeated in the message
            raise ProjectError(
                "executors.spark.master is a Spark Connect URL (sc://), which the Spark "
                "executor cannot use: it runs tasks through a SparkContext, which Spark "
                "Connect does not offer; give a spark://, yarn, k8s:// or local master"
            )
        conf = table.get("conf", {})
        if not isinstance(conf, Mapping):
            raise ProjectError("executors.spark.conf must be a table of Spark settings")
        try:
            settings = SparkSettings(
                master=str(table.get("master", "local[*]")),
                app_name=str(table.get("app_name", "conveyor")),
                conf=dict(_flatten("", conf)),
                parallelism=int(table.get("parallelism", 1000)),
                start_timeout=float(table.get("start_timeout", 30.0)),
                connect_timeout=float(table.get("connect_timeout", 5.0)),
                grace_seconds=float(table.get("grace_seconds", 5.0)),
                scratch_dir=str(table["scratch_dir"]) if table.get("scratch_dir") else None,
                no_capacity_timeout=float(table.get("no_capacity_timeout", 300.0)),
                start_grace=float(table.get("start_grace", 60.0)),
                task_port=int(table.get("task_port", 0)),
                datums_per_task=_per_task(table.get("datums_per_task", "auto")),
            )
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"executors.spark: {exc}") from exc
        timeouts = (settings.start_timeout, settings.connect_timeout, settings.no_capacity_timeout)
        if settings.parallelism < 1 or min(timeouts) <= 0 or settings.start_grace < 0:
            raise ProjectError("executors.spark: parallelism and timeouts must be positive")
        if not 0 <= settings.task_port <= 65535:
            raise ProjectError("executors.spark.task_port must be a port number (0: any free one)")
        return settings

    def spark_master(self) -> str:
        """The master URL given to Spark: a bare local master gets task retries."""
        found = _LOCAL.match(self.master)
        if found is None:
            return self.master
        return f"local[{found.group(1) or 1},{TASK_ATTEMPTS}]"

    def conf_pairs(self) -> dict[str, str]:
        """Conveyor's defaults, then the user's ``conf`` table."""
        pairs = {
            "spark.master": self.spark_master(),
            "spark.app.name": self.app_name,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.task.maxFailures": str(TASK_ATTEMPTS),
            # a cancelled task's Python worker is killed after this: let the task stop
            # its step (TERM, grace, KILL) and report first
            "spark.python.task.killTimeout": f"{self.grace_seconds + 5:g}s",
        }
        # loopback only where every executor runs on this machine; on a cluster Spark picks
        # the host's address, which executors on other nodes can reach. A user's host or
        # bind address replaces both (Spark derives the other from it).
        if self.on_loopback() and not any(key in self.conf for key in _DRIVER_ADDRESS):
            pairs.update(dict.fromkeys(_DRIVER_ADDRESS, "127.0.0.1"))
        pairs.update(self.conf)
        return pairs

    def on_loopback(self) -> bool:
        """True for a local master, or a ``spark://`` one whose masters are all on loopback
        (yarn, k8s:// and the rest are remote)."""
        if _IN_PROCESS.match(self.master):
            return True
        endpoints = self.endpoints()
        return bool(endpoints) and all(_is_loopback(host) for host, _ in endpoints)

    def endpoints(self) -> list[tuple[str, int]]:
        """(host, port) of each master of a ``spark://`` URL (several for standby masters)."""
        if not self.master.startswith("spark://"):
            return []
        found = []
        for part in self.master.removeprefix("spark://").split(","):
            host, _, port = part.rpartition(":")
            if not host or not port.isdigit():
                raise ExecutorError(
                    f"Spark master {self.master!r} is not spark://HOST:PORT; fix "
                    "executors.spark.master in .conveyor/config.toml"
                )
            found.append((host, int(port)))
        return found

    def probe_master(self) -> None:
        """Fail at once, with one clear message, when no master answers on its port
        (Spark itself would retry the registration for a minute)."""
        endpoints = self.endpoints()
        errors = []
        for host, port in endpoints:
            try:
                socket.create_connection((host.strip("[]"), port), self.connect_timeout).close()
                return
            except OSError as exc:
                errors.append(f"{host}:{port}: {exc.strerror or exc}")
        if endpoints:
            raise ExecutorError(
                f"cannot reach the Spark master {self.master} ({'; '.join(errors)}); "
                "start the master or fix executors.spark.master in .conveyor/config.toml"
            )


def _per_task(value: object) -> int:
    """``"auto"`` (0) or a positive whole number."""
    if value == "auto":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ProjectError(
        f'executors.spark.datums_per_task must be "auto" or a whole number from 1, not {value!r}'
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: resolving it could hang
        return False


def _flatten(prefix: str, table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Spark keys as TOML reads them: ``spark.executor.memory = "1g"`` unquoted is a
    nested table, quoted it is one key; both give ``spark.executor.memory``."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(f"{name}.", value)
        else:
            yield name, value_text(value)  # true/false, as Spark spells them
