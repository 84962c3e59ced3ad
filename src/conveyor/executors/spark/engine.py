"""The SparkContext: imported, started and stopped on demand, behind narrow types.

pyspark is imported here only, when the first invocation is submitted; it is typed
through the small protocols below (pyspark's own types are partial), so the rest of the
executor never touches it. The context starts in a helper thread: its start is bounded
by ``start_timeout``, and pyspark does not replace the caller's SIGINT handler (it does
so only when a context is made on the main thread).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from conveyor.errors import ExecutorError
from conveyor.executors.spark import forked, wire, worker
from conveyor.executors.spark.settings import SparkSettings

INSTALL_HINT = "install it with: pip install 'conveyor[spark]'"
_IN_DRIVER = re.compile(r"^local(\[[^\]]*\])?$")
"""Masters whose tasks run in the driver's JVM: no executor ever registers."""
TaskFunction = Callable[[str], list[tuple[str, str]]]
"""Runs one pack of invocation ids (``packing``) in a Spark task."""


class _RDD(Protocol):
    def map(self, f: TaskFunction) -> _RDD: ...
    def collect(self) -> list[Any]: ...


class _Conf(Protocol):
    def get(self, key: str, defaultValue: str | None = None) -> str | None: ...


class _Context(Protocol):
    @property
    def master(self) -> str: ...
    def getConf(self) -> _Conf: ...
    @property
    def defaultParallelism(self) -> int: ...
    @property
    def _jsc(self) -> Any: ...
    def parallelize(self, c: Iterable[str], numSlices: int) -> _RDD: ...
    def setJobGroup(self, groupId: str, description: str, interruptOnCancel: bool) -> None: ...
    def cancelJobGroup(self, groupId: str) -> None: ...
    def stop(self) -> None: ...


class Engine:
    def __init__(self, settings: SparkSettings) -> None:
        self.settings = settings
        self._context: _Context | None = None
        self._owned = False
        self._failure: str | None = None

    @property
    def started(self) -> bool:
        return self._context is not None

    def driver_addresses(self) -> tuple[str, str]:
        """(address tasks connect to, address to listen on) of the driver's host."""
        conf = self._require().getConf()
        host = conf.get("spark.driver.host") or "127.0.0.1"
        return host, conf.get("spark.driver.bindAddress") or host

    def start(self, log_dir: Path) -> None:
        """Start the context once; a failure is remembered and raised again at once."""
        if self._context is not None:
            return
        if self._failure is not None:
            raise ExecutorError(self._failure)
        try:
            self._start(log_dir)
        except ExecutorError as exc:
            self._failure = str(exc)
            raise

    def run_batch(self, group: str, packs: list[str], task: TaskFunction) -> None:
        """One Spark job, one task per pack of invocations; returns when every task has
        ended."""
        context = self._require()
        context.setJobGroup(group, f"conveyor: {len(packs)} task(s) of step invocations", True)
        context.parallelize(packs, len(packs)).map(task).collect()

    def cores(self) -> int:
        """The cores Spark would spread a job over by default (``defaultParallelism``)."""
        return max(1, int(self._require().defaultParallelism))

    def executors(self) -> int | None:
        """Executors registered with the driver now (the driver itself not counted); None
        before the context starts, or for a local master (it runs in the driver)."""
        context = self._context
        if context is None or _IN_DRIVER.match(context.master):
            return None
        try:  # one Py4J call: the driver's block managers, its own included
            return max(0, int(context._jsc.sc().getExecutorMemoryStatus().size()) - 1)
        except Exception as exc:
            raise ExecutorError(f"cannot ask Spark for its executors: {first_line(exc)}") from exc

    def cancel_group(self, group: str) -> None:
        if self._context is not None:
            self._context.cancelJobGroup(group)

    def stop(self) -> None:
        context, self._context = self._context, None
        if context is not None and self._owned:
            context.stop()

    # -- starting ----------------------------------------------------------------------
    def _require(self) -> _Context:
        if self._context is None:
            raise ExecutorError("the Spark executor is not started")
        return self._context

    def _start(self, log_dir: Path) -> None:
        pyspark = _import("pyspark")
        self.settings.probe_master()
        cloudpickle = _import("pyspark.cloudpickle")
        for module in (worker, wire, forked):  # workers need no Conveyor install
            cloudpickle.register_pickle_by_value(module)
        context_class: Any = pyspark.SparkContext
        existing = cast("_Context | None", context_class._active_spark_context)
        if existing is not None:
            self._adopt(existing)
            return
        outcome: dict[str, object] = {}
        lock = threading.Lock()
        log_path = log_dir / "spark-driver.log"
        thread = threading.Thread(
            target=self._make, args=(pyspark, log_path, outcome, lock), daemon=True
        )
        thread.start()
        thread.join(self.settings.start_timeout)
        with lock:
            if not outcome:
                outcome["abandoned"] = True
                raise ExecutorError(
                    f"Spark did not start within {self.settings.start_timeout:g}s "
                    f"(master {self.settings.master}); see {log_path}, or raise "
                    "executors.spark.start_timeout"
                )
        if "error" in outcome:
            raise ExecutorError(
                f"Spark could not start (master {self.settings.master}): "
                f"{first_line(outcome['error'])}; see {log_path}"
            )
        self._context = cast(_Context, outcome["context"])
        self._owned = True

    def _make(
        self, pyspark: ModuleType, log_path: Path, outcome: dict[str, object], lock: threading.Lock
    ) -> None:
        """Runs in the helper thread: launch the JVM (its output to the log), make the context."""
        try:
            conf = pyspark.SparkConf(loadDefaults=True)
            conf.setAll(list(self.settings.conf_pairs().items()))
            gateway = None
            if pyspark.SparkContext._gateway is None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(log_path, "ab") as log:
                    popen = {"stdout": log, "stderr": subprocess.STDOUT}
                    gateway = _import("pyspark.java_gateway").launch_gateway(conf, popen)
            context = pyspark.SparkContext(conf=conf, gateway=gateway)
        except Exception as exc:
            with lock:
                outcome["error"] = exc
            return
        with lock:
            abandoned = "abandoned" in outcome
            if not abandoned:
                outcome["context"] = context
        if abandoned:  # the caller gave up waiting: do not leak the context
            context.stop()

    def _adopt(self, context: _Context) -> None:
        """A context made by someone else in this process (a notebook): use it if it
        talks to the same master, and leave it running at the end."""
        if context.master not in (self.settings.master, self.settings.spark_master()):
            raise ExecutorError(
                f"a SparkContext for {context.master} already runs in this process; "
                f"stop it or set executors.spark.master to {context.master}"
            )
        self._context = context
        self._owned = False


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ExecutorError(
            f"the spark executor needs pyspark, which is missing; {INSTALL_HINT}"
        ) from exc


def first_line(error: object) -> str:
    """The telling line of a Spark or Py4J error (they carry whole Java stack traces)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for marker in ("Job aborted", "cancelled", "Exception:", "Error:"):
        for line in lines:
            if marker in line and not line.startswith("at "):
                text = line.removeprefix(": ")
                return text if len(text) <= 400 else text[:397] + "..."
    return lines[0][:400] if lines else type(error).__name__
