"""The one schedd this executor talks to, through the htcondor2 bindings.

The bindings are imported on first contact (``conveyor --help`` never loads them), and
every failure of theirs leaves this module as an ``ExecutorError`` in one sentence.

Every call into the bindings runs with SIGINT and SIGTERM blocked in the calling thread
(``_signals_held``): a Ctrl-C that interrupted the bindings' socket I/O mid-call (a
system call failing with EINTR inside their C++ code) crashed the process with a
segfault in ``Schedd.act``, leaving its jobs queued. A held signal waits until the call
returns; Python's handler then runs as usual (it only sets the runner's cancel flag).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import signal
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from conveyor.errors import ExecutorError
from conveyor.executors.htcondor.analyze import why_no_match
from conveyor.executors.htcondor.description import STDERR, STDOUT, ClusterPlan, classad_string
from conveyor.executors.htcondor.settings import HTCondorSettings

T = TypeVar("T")
P = ParamSpec("P")
HELD = frozenset({signal.SIGINT, signal.SIGTERM})
"""Signals held while a thread is inside the bindings."""
JOB_ATTRIBUTES = [
    "ClusterId",
    "ProcId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "HoldReason",
    "HoldReasonCode",
    "NumJobStarts",
    "RemoveReason",
    "LastRemoteHost",  # where it ran: a line of the step's log
]
PARTIAL = f"{STDOUT},{STDERR}"
"""What a job that did not complete sends back: its output so far."""
INSTALL_HINT = "install them with: pip install 'conveyor[htcondor]'"


def _signals_held(call: Callable[P, T]) -> Callable[P, T]:
    """Run ``call`` with SIGINT and SIGTERM blocked in this thread (see the module's
    docstring); they are delivered when it returns."""

    @functools.wraps(call)
    def held(*args: P.args, **kwargs: P.kwargs) -> T:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
        try:
            return call(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    return held


def import_bindings() -> Any:
    """The ``htcondor2`` module, or an ``ExecutorError`` that says how to install it."""
    try:
        with warnings.catch_warnings():
            # without CONDOR_CONFIG the bindings warn and use /dev/null: our settings
            # (collector, schedd, token_dir) may be all the client needs
            warnings.simplefilter("ignore")
            return importlib.import_module("htcondor2")
    except ImportError as exc:
        raise ExecutorError(
            "the htcondor executor needs the HTCondor Python bindings (htcondor2), "
            f"which are not installed; {INSTALL_HINT}"
        ) from exc


class Pool:
    def __init__(self, settings: HTCondorSettings) -> None:
        self.settings = settings
        self._htcondor: Any = None
        self._schedd: Any = None
        self._collector: Any = None

    @property
    def connected(self) -> bool:
        return self._schedd is not None

    def connect(self) -> None:
        """Find the schedd and prove it answers, within ``connect_timeout`` seconds."""
        if self._schedd is not None:
            return
        self._htcondor = h = import_bindings()
        try:
            self._schedd = _bounded(self._locate, self.settings.connect_timeout)
        except Exception as exc:
            where = self.settings.where(h.param.get("COLLECTOR_HOST"))
            raise ExecutorError(
                f"cannot reach the HTCondor schedd at {where}: "
                f"{_text(exc)}; start a pool or set [executors.htcondor] schedd/collector "
                "(or CONDOR_CONFIG) in .conveyor/config.toml"
            ) from exc

    @_signals_held
    def submit(self, plan: ClusterPlan) -> tuple[int, list[str]]:
        """Queue one cluster on hold, upload its input files; (cluster id, warnings)."""
        h = self._htcondor
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                description = h.Submit(plan.description)
                result = self._schedd.submit(description, count=len(plan.members), spool=True)
            except Exception as exc:
                raise ExecutorError(f"HTCondor refused the job: {_text(exc)}") from exc
            try:
                self._schedd.spool(result)
            except Exception as exc:
                self.remove(f"ClusterId == {result.cluster()}")
                raise ExecutorError(
                    f"cannot upload the step's input files to the HTCondor schedd: {_text(exc)}"
                ) from exc
        return int(result.cluster()), [f"HTCondor: {w.message}" for w in caught]

    @_signals_held
    def query(self, constraint: str) -> list[dict[str, Any]]:
        try:
            ads = self._schedd.query(constraint=constraint, projection=JOB_ATTRIBUTES)
        except Exception as exc:
            raise ExecutorError(f"cannot query the HTCondor schedd: {_text(exc)}") from exc
        return [{name: ad.get(name) for name in JOB_ATTRIBUTES} for ad in ads]

    @_signals_held
    def retrieve(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Fetch the jobs' output from the spool; returns the failures by job id."""
        if not job_ids:
            return {}
        try:
            self._schedd.retrieve(list(job_ids))
            return {}
        except Exception as exc:
            if len(job_ids) == 1:
                return {job_ids[0]: _text(exc)}
        failures: dict[str, str] = {}  # one bad job fails a batch: find which
        for job_id in job_ids:
            failures.update(self.retrieve([job_id]))
        return failures

    @_signals_held
    def retrieve_partial(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Fetch the stdout and stderr of jobs that did not complete (running or held):
        what they streamed to the spool so far. Their outputs are not asked for (a
        running job has not gathered them: the whole transfer would fail). Returns the
        failures by job id."""
        if not job_ids:
            return {}
        try:
            self._schedd.edit(list(job_ids), "TransferOutput", classad_string(PARTIAL))
        except Exception as exc:
            return dict.fromkeys(job_ids, _text(exc))
        return self.retrieve(job_ids)

    @_signals_held
    def slots(self, projection: Sequence[str] = ()) -> list[Any]:
        """The pool's slot ads (its startds), from the collector; ``projection``: only
        these attributes (all when empty)."""
        h = self._htcondor
        try:
            if self._collector is None:
                collector = self.settings.collector
                self._collector = h.Collector(collector) if collector else h.Collector()
            return list(self._collector.query(h.AdTypes.Startd, projection=list(projection)))
        except Exception as exc:
            why = _text(exc)
            raise ExecutorError(f"cannot ask the HTCondor collector for slots: {why}") from exc

    @_signals_held
    def explain(self, job_id: str) -> str | None:
        """Why no slot matches the job (see analyze.py); None when one does, or the job
        is gone. Two queries: the job's whole ad, the pool's slots."""
        cluster, _, proc = job_id.partition(".")
        try:
            constraint = f"ClusterId == {int(cluster)} && ProcId == {int(proc)}"
            ads = self._schedd.query(constraint=constraint)
        except Exception as exc:
            raise ExecutorError(f"cannot query the HTCondor schedd: {_text(exc)}") from exc
        if not ads:
            return None
        job = ads[0]
        slots = self.slots()
        asked = {n: _evaluated(job, n) for n in ("RequestCpus", "RequestMemory", "RequestDisk")}
        offers = [{n: _evaluated(slot, n) for n in ("Cpus", "Memory", "Disk")} for slot in slots]
        matching = sum(1 for slot in slots if _accepts(job, slot))
        requirements = str(job.lookup("Requirements")) if "Requirements" in job else "true"
        return why_no_match(asked, offers, matching, requirements)

    @_signals_held
    def submit_in_place(self, plan: ClusterPlan) -> tuple[int, list[str]]:
        """Queue one cluster of shared-filesystem jobs (no spool); (cluster id, warnings)."""
        h = self._htcondor
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = self._schedd.submit(h.Submit(plan.description), count=len(plan.members))
            except Exception as exc:
                raise ExecutorError(f"HTCondor refused the job: {_text(exc)}") from exc
        return int(result.cluster()), [f"HTCondor: {w.message}" for w in caught]

    @_signals_held
    def owner(self) -> str:
        """The user the schedd makes this client's jobs owned by: a held job that runs
        nothing, submitted, read and removed (a root client with a user's token)."""
        h = self._htcondor
        probe = {"executable": "/bin/true", "transfer_executable": "false", "hold": "true"}
        try:
            cluster = self._schedd.submit(h.Submit(probe), count=1).cluster()
            ads = self._schedd.query(constraint=f"ClusterId == {cluster}", projection=["Owner"])
            self._schedd.act(h.JobAction.Remove, f"ClusterId == {cluster}", "conveyor probe")
        except Exception as exc:
            why = _text(exc)
            raise ExecutorError(f"cannot ask the HTCondor schedd who owns jobs: {why}") from exc
        if not ads or not ads[0].get("Owner"):
            raise ExecutorError("the HTCondor schedd did not say who owns this client's jobs")
        return str(ads[0]["Owner"])

    def filesystem_domains(self) -> tuple[str, set[str]]:
        """(this machine's FILESYSTEM_DOMAIN, those the pool's slots declare)."""
        mine = str(self._htcondor.param.get("FILESYSTEM_DOMAIN") or "")
        slots = self.slots(["FileSystemDomain"])
        return mine, {str(slot.get("FileSystemDomain") or "") for slot in slots}

    @_signals_held
    def open_events(self, path: Path) -> Any:
        try:
            return self._htcondor.JobEventLog(str(path))
        except Exception as exc:
            why = f"cannot read the HTCondor job event log {path}: {_text(exc)}"
            raise ExecutorError(why) from exc

    @_signals_held
    def read_events(self, reader: Any, path: Path) -> list[tuple[str, str, dict[str, Any]]]:
        """The events appended since the last read, without waiting: (type name,
        ``cluster.proc``, attributes)."""
        try:
            return [
                (event.type.name, f"{event.cluster}.{event.proc}", dict(event.items()))
                for event in reader.events(stop_after=0)
            ]
        except Exception as exc:
            why = f"cannot read the HTCondor job event log {path}: {_text(exc)}"
            raise ExecutorError(why) from exc

    @_signals_held
    def reschedule(self) -> None:
        """Ask for a negotiation cycle now (best effort)."""
        with contextlib.suppress(Exception):
            self._schedd.reschedule()

    @_signals_held
    def remove(self, job_spec: Sequence[str] | str, reason: str = "conveyor") -> str | None:
        """Remove jobs; best effort, returns the error text if the schedd refused."""
        if not job_spec or self._schedd is None:
            return None
        spec = job_spec if isinstance(job_spec, str) else list(job_spec)
        try:
            self._schedd.act(self._htcondor.JobAction.Remove, spec, reason)
        except Exception as exc:
            return _text(exc)
        return None

    # -- internals --------------------------------------------------------------
    def _locate(self) -> Any:
        h = self._htcondor
        settings = self.settings
        for name, value in client_params(settings).items():
            h.param[name] = value
        if settings.schedd and settings.schedd.startswith("<"):
            classad = importlib.import_module("classad2")
            location = classad.ClassAd({"MyAddress": settings.schedd, "CondorVersion": ""})
        else:
            collector = h.Collector(settings.collector) if settings.collector else h.Collector()
            location = _find_schedd(h, collector, settings.schedd)
        schedd = h.Schedd(location)
        schedd.query(constraint="false", projection=["ClusterId"])  # it answers
        return schedd


def client_params(settings: HTCondorSettings) -> dict[str, str]:
    """The client configuration the settings give (on top of ``CONDOR_CONFIG``'s)."""
    params = {}
    if settings.token_dir:
        params["SEC_TOKEN_DIRECTORY"] = settings.token_dir
    if settings.scitoken_file:
        params["SCITOKENS_FILE"] = settings.scitoken_file
    if settings.auth_methods:
        params["SEC_CLIENT_AUTHENTICATION_METHODS"] = settings.auth_methods
    return params


def _find_schedd(h: Any, collector: Any, name: str | None) -> Any:
    if name:
        location = collector.locate(h.DaemonType.Schedd, name)
        if location is None:
            raise LookupError(f"the collector knows no schedd named {name!r}")
        return location
    location = collector.locate(h.DaemonType.Schedd)
    if location is not None:
        return location
    found = collector.locateAll(h.DaemonType.Schedd)
    if len(found) == 1:
        return found[0]
    raise LookupError(
        f"the collector knows {len(found)} schedds and none on this host; "
        "set [executors.htcondor] schedd = NAME"
    )


def _bounded(function: Callable[[], T], timeout: float) -> T:
    """Run ``function`` in a daemon thread; a pool that never answers is an error, not a hang."""
    box: dict[str, Any] = {}

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD)  # this thread is in the bindings
        try:
            box["value"] = function()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="conveyor-htcondor-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _evaluated(ad: Any, name: str) -> Any:
    try:
        return ad.eval(name)
    except Exception:  # missing or not evaluable: no number to compare
        return None


def _accepts(job: Any, slot: Any) -> bool:
    try:
        return bool(job.symmetricMatch(slot))
    except Exception:  # an ad the bindings cannot evaluate: it does not match
        return False


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
