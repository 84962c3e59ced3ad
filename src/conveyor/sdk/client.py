"""``conveyor.Client``: runs, steps, logs, outputs and lineage from Python, the same
for the project in a directory and for a team server.

    >>> import conveyor
    >>> client = conveyor.Client()                      # the project here
    >>> run = client.run({"lr": 0.1})                    # runs, with a progress bar
    >>> run.output("out/metrics.csv").to_pandas()
    >>> team = conveyor.Client("https://conveyor.example", token="...", project="demo")
    >>> team.runs()                                      # a table in Jupyter

A thin facade: the local side calls what the CLI calls (``sdk/running.py``,
``sdk/inspect.py``, ``sdk/logs.py``, ``sdk/maintenance.py``), the remote side the
server's REST API (``sdk/remote.py``). Every error is a ``ConveyorError``.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.domain.types import ParamValue
from conveyor.errors import ConveyorError, NotFoundError, UsageError
from conveyor.sdk.backend import Backend, StartRequest
from conveyor.sdk.notebook import Progress, run_html, run_text, runs_html, runs_text

if TYPE_CHECKING:
    from conveyor.spec.pyflow import PipelineFunction

FINISHED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
POLL = 0.3
"""Seconds between two looks at a run being waited for."""
MAX_DISPLAYED = 20 * 1024 * 1024
"""The largest image an output shows inline in Jupyter."""


class WaitTimeout(ConveyorError):
    """A run was still going when ``Run.wait(timeout=...)`` gave up waiting."""


class Client:
    """Runs of one Conveyor project: on this machine, or on a team server.

    ``Client()`` opens the project in the current directory (or its nearest parent with
    a pipeline file); ``Client(path=...)`` one elsewhere. ``Client(url, token=...,
    project=...)`` talks to a Conveyor server; ``token`` defaults to ``$CONVEYOR_TOKEN``.
    Use it as a context manager, or call ``close()``, to release its connections.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        project: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._backend: Backend
        if url is None:
            if token is not None or project is not None:
                raise UsageError("token= and project= are for a server: Client(url, token=...)")
            from conveyor.sdk.client_local import LocalBackend
            from conveyor.sdk.project import Project

            self._backend = LocalBackend(Project.discover(Path(path or ".")))
            return
        if path is not None:
            raise UsageError("path= is for a local project; a server client takes a url")
        self._backend = _remote_backend(url, token, project)

    @classmethod
    def for_remote(cls, path: str | os.PathLike[str] | None = None) -> Client:
        """A client of the server in the project's ``[remote]`` settings
        (``.conveyor/config.toml``: ``url``, ``project``), with the token from the
        environment variable they name (``$CONVEYOR_TOKEN`` by default). Its runs
        default to the checked-out branch, refused until it is pushed, as with
        ``conveyor run --remote``."""
        from conveyor.sdk.client_remote import RemoteBackend
        from conveyor.sdk.project import Project
        from conveyor.sdk.remote import RemoteClient

        project = Project.discover(Path(path or "."))
        return cls.over(RemoteBackend(RemoteClient.for_project(project), project=project))

    @classmethod
    def over(cls, backend: Backend) -> Client:
        """A client on a backend made by the caller (tests, another transport)."""
        client = cls.__new__(cls)
        client._backend = backend
        return client

    @property
    def where(self) -> str:
        """Which project this client reads, in words."""
        return self._backend.where

    def runs(self, limit: int = 20) -> RunList:
        """The newest ``limit`` runs, newest first (without their steps)."""
        return RunList(self, self._backend.list_runs(limit))

    def get_run(self, ref: str = "latest") -> Run:
        """A run by id, a unique prefix of one, or ``latest``."""
        return Run(self, self._backend.get_run(ref))

    def run(
        self,
        params: Mapping[str, ParamValue] | PipelineFunction[..., Any] | None = None,
        /,
        *,
        ref: str | None = None,
        only: Sequence[str] = (),
        force: bool = False,
        wait: bool = True,
        progress: bool = True,
        **values: ParamValue,
    ) -> Run:
        """Start a run of the pipeline and (unless ``wait=False``) wait for it to end.

        ``client.run(my_pipeline, x=3)`` runs a ``@conveyor.pipeline`` of the project
        (the file that defines it, as ``conveyor run pipeline.py`` does).
        Parameters come as a mapping, as keywords, or both (``client.run(lr=0.1)``);
        values are typed, or text read as the declared type, as ``-p name=value`` is.
        ``ref``: a branch, tag or commit to run; by default a local client runs the
        working tree, as ``conveyor run`` does (a commit runs in a temporary worktree),
        a server ``main`` (``for_remote``: the checked-out branch, once pushed).
        ``only`` and ``force`` are ``--only`` and ``--force`` (local runs). The progress
        shows in a notebook or a terminal; an interrupt (Ctrl-C, Jupyter's stop button)
        while waiting cancels the run.
        """
        from conveyor.spec.pyflow import PipelineFunction

        pipeline_file = None
        if isinstance(params, PipelineFunction):
            pipeline_file, params = _pipeline_file(params), None
        merged = {**(params or {}), **values}
        start = StartRequest(merged, ref, tuple(only), force, pipeline_file)
        run_id = self._backend.start(start)
        run = Run(self, self._backend.get_run(run_id))
        return run.wait(progress=progress) if wait else run

    def sweep(
        self,
        axes: Mapping[str, Sequence[ParamValue]],
        /,
        *,
        ref: str | None = None,
        progress: bool = True,
        **fixed: ParamValue,
    ) -> dict[str, Any]:
        """One run per combination of ``axes`` (``{"lr": [0.1, 0.01], "depth": [3, 5]}``,
        the first name varying slowest), each with the ``fixed`` values too, one after
        another; then compared. Returns ``{"runs": [Run], "comparison": <compare's
        JSON>}``. Each combination is cached on its own, as with ``conveyor run --sweep``.
        """
        from conveyor.sdk.sweep import combinations

        runs = [
            self.run({**fixed, **combination}, ref=ref, progress=progress)
            for combination in combinations(axes)
        ]
        comparison = self._backend.tracking([r.id for r in runs])
        return {"runs": runs, "comparison": comparison}

    def lineage(self, target: str) -> dict[str, Any]:
        """Which step run, commit and inputs produced a file (a path, or a digest
        locally), and which step runs read it: ``conveyor lineage --json``'s answer."""
        return self._backend.lineage(target)

    def compare(self, *runs: Run | str) -> dict[str, Any]:
        """Runs side by side (``conveyor runs compare --json``): ``params`` and
        ``metrics`` rows with one value per run, ``changed_outputs``, ``errors``."""
        if len(runs) < 2:
            raise UsageError("compare needs at least two runs")
        return self._backend.tracking([r.id if isinstance(r, Run) else r for r in runs])

    def close(self) -> None:
        """Release connections; locally, cancel the runs this client started that are
        still going, and wait for them to stop."""
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<conveyor.Client {self.where}>"


def _remote_backend(url: str, token: str | None, project: str | None) -> Backend:
    from conveyor.sdk.client_remote import RemoteBackend
    from conveyor.sdk.remote import RemoteClient
    from conveyor.sdk.settings import RemoteSettings

    if not url.startswith(("http://", "https://")):
        raise UsageError(f"the server's url must start with http:// or https://, not {url!r}")
    if not project:
        raise UsageError("name the server's project: Client(url, token=..., project='name')")
    token = token or os.environ.get("CONVEYOR_TOKEN", "")
    if not token:
        raise UsageError(f"give token= or set CONVEYOR_TOKEN to your API token for {url}")
    return RemoteBackend(RemoteClient(RemoteSettings(url.rstrip("/"), project), token))


class RunList(list["Run"]):
    """Runs, newest first; a table in Jupyter."""

    def __init__(self, client: Client, runs: Sequence[dict[str, Any]]) -> None:
        super().__init__(Run(client, r) for r in runs)

    def _repr_html_(self) -> str:
        return runs_html([r.data for r in self])

    def __repr__(self) -> str:
        return runs_text([r.data for r in self])


class Run:
    """A run as last read (``refresh()`` reads it again); in Jupyter, a table of its
    steps with their statuses and, locally, the DAG."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data
        """The run as ``conveyor show --json`` prints it."""

    @property
    def _backend(self) -> Backend:
        return self._client._backend

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        """queued, running, succeeded, failed, cancelled or interrupted."""
        return str(self.data["status"])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data.get("params") or {})

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Metrics by source (a metrics file's path, ``log:STEP`` for
        ``conveyor.log_metric`` values) -> name -> value: ``conveyor metrics show``."""
        return dict(self.tracking()["metrics"])

    def tracking(self) -> dict[str, Any]:
        """Parameters, metrics, kept artifacts and unreadable metrics files
        (``conveyor metrics show --json``)."""
        return self._backend.tracking([self.id])

    @property
    def commit(self) -> str | None:
        return self.data.get("commit")

    @property
    def error(self) -> str | None:
        return self.data.get("error")

    @property
    def steps(self) -> list[Step]:
        """The run's steps in the order they ran (read with the run: ``refresh()``)."""
        if "steps" not in self.data:  # a run from a listing
            self.refresh()
        return [Step(self, s) for s in self.data.get("steps", [])]

    def step(self, name: str) -> Step:
        """A step by its id (``job.step``), or by a name that picks one step alone
        (the step's own name, or its job's)."""
        steps = self.steps
        exact = [s for s in steps if s.id == name]
        loose = exact or [s for s in steps if s.id.endswith("." + name) or s.job == name]
        if len(loose) == 1:
            return loose[0]
        if not loose:
            raise NotFoundError(f"run {self.id} has no step {name!r} (steps look like job.step)")
        names = ", ".join(s.id for s in loose[:5])
        raise NotFoundError(f"{name!r} names several steps of run {self.id}: {names}")

    @property
    def outputs(self) -> list[Output]:
        """Every output the run's steps produced or took from the cache."""
        return [o for s in self.steps for o in s.outputs]

    def output(self, path: str) -> Output:
        """The output recorded at ``path`` (as the pipeline declares it)."""
        wanted = posixpath.normpath(path)
        for output in self.outputs:
            if posixpath.normpath(output.path) == wanted:
                return output
        known = ", ".join(o.path for o in self.outputs[:8]) or "none"
        raise NotFoundError(f"run {self.id} has no output {path!r} (its outputs: {known})")

    def refresh(self) -> Run:
        """Read the run again; returns itself."""
        self.data = self._backend.get_run(self.id)
        return self

    def wait(self, timeout: float | None = None, progress: bool = True) -> Run:
        """Wait until the run ends, showing its progress (a live table in a notebook, a
        bar on a terminal); an interrupt cancels the run. Returns itself, refreshed."""
        bar = Progress(progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        total = self._backend.planned_steps(self.id)
        try:
            while not self._backend.ended(self.id, POLL):
                bar.update(self.refresh().data, total)
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(f"run {self.id} is still {self.status} after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        bar.close(self.refresh().data)
        return self

    def cancel(self) -> None:
        """Cancel the run: a run started by this client stops its steps; a server
        cancels a queued run or asks its worker to stop a running one."""
        self._backend.cancel(self.id)

    def logs(self, step: str | None = None, tail: int | None = None) -> str:
        """The captured output of one step, or of every step that ran (each line
        prefixed with its step), the last ``tail`` lines of each only when given."""
        if step is not None:
            return self.step(step).logs(tail)
        return "".join(
            "".join(f"{s.id} │ {line}\n" for line in s.logs(tail).splitlines())
            for s in self.steps
            if s.data.get("log")
        )

    def fetch(self, destination: str | os.PathLike[str]) -> int:
        """Write every output of the run under ``destination``; returns the file count."""
        return self._backend.fetch(self.id, Path(destination))

    def dag_svg(self) -> str:
        """The steps and what each read from which, as an SVG (empty when unknown)."""
        from conveyor.sdk.notebook import dag_svg

        upstream = self._backend.upstream(self.id)
        return dag_svg(self.data.get("steps", []), upstream) if upstream else ""

    def _repr_html_(self) -> str:
        upstream = self._backend.upstream(self.id) if self.data.get("steps") else {}
        return run_html(self.data, upstream)

    def __repr__(self) -> str:
        return run_text(self.data)


class Step:
    """One step of a run: its status, its log and its outputs."""

    def __init__(self, run: Run, data: dict[str, Any]) -> None:
        self.run = run
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def job(self) -> str:
        return str(self.data.get("job", ""))

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def cached(self) -> bool:
        return bool(self.data.get("cached"))

    @property
    def duration(self) -> float | None:
        return self.data.get("duration")

    @property
    def error(self) -> str | None:
        return self.data.get("error")

    @property
    def outputs(self) -> list[Output]:
        return [Output(self, o) for o in self.data.get("outputs", [])]

    def logs(self, tail: int | None = None) -> str:
        """The step's captured output (its last ``tail`` lines only, when given)."""
        return "".join(self.stream_logs(tail))

    def stream_logs(self, tail: int | None = None) -> Iterator[str]:
        """The step's output piece by piece, in constant memory; from a server, it
        follows the step while it runs."""
        return self.run._backend.log(self.run.id, self.id, tail)

    def __repr__(self) -> str:
        cached = " (cached)" if self.cached else ""
        return f"<Step {self.id} {self.status}{cached}>"


_CSV = (".csv", ".tsv")
_PARQUET = (".parquet", ".pq")
_IMAGES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
"""Shown inline (never SVG: its markup could carry script into the notebook page)."""


class Output:
    """An output file or directory of a step: as a path, bytes, text, or loaded
    (``to_pandas()`` for CSV and Parquet); an image shows itself in Jupyter."""

    def __init__(self, step: Step, data: dict[str, Any]) -> None:
        self.step = step
        self.data = data

    @property
    def path(self) -> str:
        """Where the pipeline declares it, relative to the project."""
        return str(self.data["path"])

    @property
    def digest(self) -> str:
        return str(self.data["digest"])

    @property
    def size(self) -> int:
        return int(self.data.get("size") or 0)

    @property
    def is_dir(self) -> bool:
        return self.data.get("kind") == "tree"

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.path)[1].lower()

    def local_path(self) -> Path:
        """A read-only copy on this machine, named like the output (locally, links
        into the store; from a server, downloaded once into ``~/.cache/conveyor``)."""
        run = self.step.run
        return run._backend.output_path(run.id, self.data)

    def read_bytes(self) -> bytes:
        run = self.step.run
        return run._backend.output_bytes(run.id, self.data)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding, errors="replace")

    def to_pandas(self) -> Any:
        """The output as a ``pandas.DataFrame``: CSV (``.csv``, ``.tsv``) or Parquet
        (``.parquet``, ``.pq``; needs pyarrow or fastparquet)."""
        if self.suffix not in (*_CSV, *_PARQUET):
            raise UsageError(f"to_pandas reads CSV or Parquet outputs; {self.path} is neither")
        try:
            import pandas
        except ImportError:
            raise UsageError(f"to_pandas needs pandas: pip install pandas ({self.path})") from None
        try:
            if self.suffix in _CSV:
                separator = "\t" if self.suffix == ".tsv" else ","
                return pandas.read_csv(io.BytesIO(self.read_bytes()), sep=separator)
            return pandas.read_parquet(self.local_path())
        except ImportError as exc:  # Parquet without an engine
            raise UsageError(f"reading {self.path} needs {exc.name or 'pyarrow'}: {exc}") from None
        except ValueError as exc:  # pandas' parse errors derive from ValueError
            raise UsageError(f"{self.path} cannot be read as a table: {exc}") from None

    def load(self) -> Any:
        """The output by its kind: a DataFrame for CSV/Parquet, the value of a
        ``.json`` file, text for ``.txt``/``.md``/``.log``, else bytes."""
        if self.suffix in (*_CSV, *_PARQUET):
            return self.to_pandas()
        if self.suffix == ".json":
            try:
                return json.loads(self.read_bytes())
            except ValueError as exc:
                raise UsageError(f"{self.path} is not JSON: {exc}") from None
        if self.suffix in (".txt", ".md", ".log"):
            return self.read_text()
        return self.read_bytes()

    def _image(self, kind: str) -> bytes | None:
        if _IMAGES.get(self.suffix) != kind or self.size > MAX_DISPLAYED or self.is_dir:
            return None
        return self.read_bytes()

    def _repr_png_(self) -> bytes | None:
        return self._image("png")

    def _repr_jpeg_(self) -> bytes | None:
        return self._image("jpeg")

    def __repr__(self) -> str:
        kind = "directory" if self.is_dir else f"{self.size} B"
        return f"<Output {self.path} {self.digest[:12]} {kind} of {self.step.id}>"


def _pipeline_file(pipeline: PipelineFunction[..., Any]) -> Path:
    """The file that defines a ``@conveyor.pipeline`` (a module's, not a notebook's)."""
    filename = pipeline.fn.__code__.co_filename
    if pipeline.fn.__module__ == "__main__" or not Path(filename).is_file():
        raise UsageError(
            f"pipeline {pipeline.name} is defined in {filename}, not in a file of the "
            "project; define it in a module (e.g. pipeline.py) and import it"
        )
    return Path(filename).resolve()
