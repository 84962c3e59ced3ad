"""The one internal pipeline model every format loads into (what the user declared).

Field names follow the native ``conveyor.yml``; foreign formats map onto them. Unknown
keys are errors everywhere (``extra="forbid"``) so that a typo never passes silently.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor.domain.durations import parse_duration
from conveyor.domain.envnames import EXAMPLES, changes_execution
from conveyor.spec.expressions import value_text
from conveyor.spec.yamlsource import SourceMap

Scalar = str | int | float | bool
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
PYTHON_TARGET = rf"^{_DOTTED}:{_DOTTED}$"
"""``package.module:function`` (the function may be ``Class.method``)."""


def _optional(description: str) -> Any:
    """A field that may be left out and, when given, is not empty."""
    return Field(default=None, min_length=1, description=description)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


ParamType = Literal["int", "float", "str", "bool"]
PullPolicy = Literal["always", "never", "if-not-exists"]


class ParamSpec(_Strict):
    """A typed pipeline parameter, set with ``--param name=value``."""

    type: ParamType = "str"
    default: Scalar | None = None
    description: str | None = None


class ResourcesSpec(_Strict):
    """What a step asks of the machine (``memory``/``disk`` in MB or with a unit)."""

    cpus: float = Field(default=1.0, gt=0)
    memory: int | str | None = None
    gpus: int = Field(default=0, ge=0)
    disk: int | str | None = None


class ActionUseSpec(_Strict):
    """A resolved action a step runs (written by the DataTorch loader and ``convert``).

    ``inputs`` reach the step as ``INPUT_<NAME>`` variables and as JSON in
    ``CONVEYOR_ACTION_INPUTS``; a string ``${{ steps.ID.outputs.KEY }}`` is an output of an
    earlier step of the job, resolved just before the step starts (a whole-string
    reference keeps its type). ``outputs`` are the names the action may set by printing
    ``::name::<json>`` lines.
    """

    ref: str = Field(min_length=1, description="What the action was named: owner/name@tag, ./path.")
    commit: str | None = Field(default=None, description="The git commit the action is pinned to.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    rules: Literal["datatorch"] | None = Field(
        default=None,
        description="Whose run-time rules apply: `datatorch` casts inputs to `types` at "
        "launch, reads every `prefix::name::<json>` line as an output (declared or not) "
        "and fails the step on one that does not hold JSON.",
    )
    types: dict[str, str] = Field(
        default_factory=dict, description="Declared input types, as the action's format names them."
    )
    uses: str | None = Field(
        default=None,
        description="Where a fetched action comes from (`<repository>@<tag>`): what "
        "`conveyor convert` writes as the step's `uses` so that the file fetches it again.",
    )
    file: str | None = Field(default=None, description="The manifest's name, when not the default.")


ConditionKey = Literal["branch", "event", "ref", "repo", "cron", "target", "action", "os", "arch"]


class ConditionFilterSpec(_Strict):
    """Globs a value must match (any ``include``, when given) and must not (any ``exclude``)."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


When = dict[ConditionKey, str | list[str] | ConditionFilterSpec]
_WHEN: Any = Field(
    default_factory=dict,
    description="Run only when the trigger (branch, event, ref, repo, cron, target, action) and "
    "the host (os, arch) match these globs: a list, or {include: [...], exclude: [...]}; "
    "otherwise skipped with the reason.",
)


class VolumeSpec(_Strict):
    """A temporary directory shared by the job's steps of one run (Drone's temp volume),
    or with ``host`` a directory of the machine (only where the project allows it)."""

    name: Name
    path: str = Field(
        pattern=r"^/", description="Where the step's container sees it (an absolute path)."
    )
    host: str | None = Field(
        default=None,
        pattern=r"^/",
        description="A directory of the machine to mount instead (Drone's host volume): "
        "refused at launch unless under one of the project's [containers] host_volumes.",
    )


class ServiceSpec(_Strict):
    """A long-lived process beside the job's steps for the whole run (Drone's ``services``
    and ``detach: true`` steps): a container reachable by its name, or without a container
    runtime its ``run`` as a host process reached at ``localhost``."""

    name: Name
    image: str | None = _optional("The service's image; without `run`, its own entrypoint.")
    run: str | None = _optional("Shell commands the service runs (`sh -e -c`).")
    env: dict[str, Scalar] = Field(default_factory=dict)
    pull: PullPolicy | None = Field(default=None, description="When to pull its image.")

    @model_validator(mode="after")
    def _image_or_run(self) -> ServiceSpec:
        if self.image is None and self.run is None:
            raise ValueError(f"service {self.name!r} needs an image or `run` commands")
        return self


class InputSpec(_Strict):
    """An input with options: ``{path: data/*.csv, optional: true}``."""

    path: str = Field(min_length=1, description="A file, directory or glob the step reads.")
    optional: bool = Field(
        default=False, description="true: a glob may match nothing, a path may be missing."
    )
    keyed: bool = Field(
        default=True,
        description="false: brought to the step (executors without a shared filesystem) "
        "but not part of its cache key: code whose part the step uses its command keys "
        "(a Python pipeline's module).",
    )


class StepSpec(_Strict):
    """One step of a job: a shell command (or a Python function) with declared inputs
    and outputs, run once, or once per datum when it declares ``datums``."""

    id: Name | None = None
    name: str | None = None
    image: str | None = _optional(
        "A container image for the step (recorded; run per [containers] settings)."
    )
    run: str | None = _optional(
        "Shell commands, run with `sh -e -c` (optional only for an image step)."
    )
    pull: PullPolicy | None = Field(
        default=None, description="Image pull policy: always, never or if-not-exists."
    )
    python: str | None = Field(
        default=None,
        pattern=PYTHON_TARGET,
        description="A function to call instead of `run`: `package.module:function`.",
    )
    notebook: str | None = Field(
        default=None,
        pattern=r"^[^\n]+\.ipynb$",
        description="A Jupyter notebook to execute instead of `run` (papermill), e.g. "
        "`analysis/explore.ipynb`; the executed notebook and its HTML are outputs.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="notebook steps: values injected into the notebook's `parameters` "
        "cell (templates allowed; `${{ params.x }}` alone keeps the parameter's type).",
    )
    datums: list[str] | None = _optional(
        "Fan-out: files, directories or globs; one step instance per match."
    )
    result: str | None = _optional(
        "python steps: where the return value is written as JSON; notebook steps: where "
        "the executed notebook goes (`.ipynb`, its HTML beside it)."
    )
    env: dict[str, Scalar] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variable -> secret name (read from the caller's environment).",
    )
    status_env: list[str] = Field(
        default_factory=list,
        alias="status-env",
        description="Variables set at launch to the run status so far: NAME (success or "
        "failure) or NAME=OK/FAILED with the words to use.",
    )
    needs: list[Name] | None = Field(
        default=None,
        description="Steps of the same job this step waits for (default: the step before).",
    )
    continue_on_error: bool = Field(
        default=False,
        alias="continue-on-error",
        description="true: a failure of this step neither fails the run nor its dependents.",
    )
    if_: str = Field(
        default="success()",
        alias="if",
        description="Run policy: success() (default), failure() or always().",
    )
    when: When = _WHEN
    volumes: list[VolumeSpec] = Field(
        default_factory=list,
        description="Temporary directories shared by the job's steps in a run, by name, "
        "mounted at their path in the step's container (steps on the host do not see them); "
        "removed when the run ends.",
    )
    privileged: bool = Field(
        default=False,
        description="Run the step's container privileged (only where the project allows it: "
        "`privileged = true` under [containers]; never on a server).",
    )
    ci: Literal["drone", "dotscience"] | None = Field(
        default=None,
        description="The CI system whose variables the step is given (DRONE_*, CI_*; "
        "dotscience adds DOTSCIENCE_TASK_ID) and whose ${VAR} substitution its run and env "
        "go through at launch, values quoted for their place in the shell text.",
    )
    timeout: float | None = Field(
        default=None,
        description="Seconds, or a string like '90s', '5m', '2h', counted from when the "
        "step starts running (queue time is not counted).",
    )
    queue_timeout: float | None = Field(
        default=None,
        alias="queue-timeout",
        description="How long the step may wait in its executor's queue before it starts "
        "(seconds or '10m'); default: no limit.",
    )
    retries: int = Field(default=0, ge=0, le=100)
    inputs: list[str | InputSpec] = Field(
        default_factory=list,
        description="Files, directories or globs the step reads (part of the cache key); "
        "each must exist or match, unless given as {path: ..., optional: true}.",
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="Files or directories the step writes (stored as artifacts).",
    )
    metrics: list[str] = Field(
        default_factory=list,
        description="Metrics files the step writes (JSON, YAML, CSV or TSV, read like DVC: "
        "nested keys joined by dots, a table's last row); outputs too, shown by "
        "`conveyor metrics show`.",
    )
    cache: bool = Field(default=True, description="false: always run, never serve from cache.")
    resources: ResourcesSpec | None = None
    action: ActionUseSpec | None = None

    @field_validator("timeout", "queue_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("status_env")
    @classmethod
    def _status_words(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(=[^/=]+/[^/=]+)?$", entry):
                raise ValueError(f"{entry!r} is not NAME or NAME=OK/FAILED")
        return value

    @field_validator("secrets")
    @classmethod
    def _no_execution_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for variable in value:
            if changes_execution(variable):
                raise ValueError(
                    f"{variable} changes how steps run ({EXAMPLES}), so no secret may set it"
                )
        return value

    @field_validator("datums", mode="before")
    @classmethod
    def _one_or_many_datums(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_command(self) -> StepSpec:
        commands = [k for k in ("run", "python", "notebook") if getattr(self, k) is not None]
        plugin = not commands and self.image is not None
        if not plugin and len(commands) != 1:
            # an image step may have none: a plugin, run as its image says
            raise ValueError(
                "a step has either `run:` (shell commands), `python:` (module:function) or "
                "`notebook:` (a .ipynb file)"
                if not commands
                else "a step has only one of `run:`, `python:` and `notebook:` (this one has "
                f"{' and '.join(commands)})"
            )
        if self.result is not None and self.python is None and self.notebook is None:
            raise ValueError(
                "`result:` is for `python:` steps (where the return value goes) and "
                "`notebook:` steps (where the executed notebook goes)"
            )
        if self.notebook is not None and self.result and not self.result.endswith(".ipynb"):
            raise ValueError("`result:` of a notebook step is a path ending in .ipynb")
        if self.parameters and self.notebook is None:
            raise ValueError("`parameters:` is for `notebook:` steps (use `env:` or `run:`)")
        return self


class SparkJobSpec(_Strict):
    """A job's ``spark:`` table: how the Spark executor runs its steps."""

    isolate: bool = Field(
        default=False,
        description="Run each `python:` datum in a fresh fork of the task instead of the "
        "pack's one reused child (no module state carried from one datum to the next).",
    )


class JobSpec(_Strict):
    """Steps that run in order; jobs run in parallel unless ``needs`` orders them."""

    name: str | None = None
    needs: list[Name] = Field(default_factory=list)
    env: dict[str, Scalar] = Field(default_factory=dict)
    matrix: dict[str, list[Any]] | None = Field(
        default=None,
        description="Fan-out: one job instance per combination; optional include/exclude lists.",
    )
    runs_on: str | None = Field(
        default=None, alias="runs-on", description="The executor for this job's steps."
    )
    resources: ResourcesSpec | None = None
    htcondor: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Extra HTCondor submit commands (requirements, accounting_group, universe).",
    )
    spark: SparkJobSpec | None = Field(
        default=None,
        description="Spark executor options for this job's steps (`isolate`).",
    )
    when: When = _WHEN
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="On a server, at most this many runs of the pipeline run at once; "
        "another waits in the queue.",
    )
    services: list[ServiceSpec] = Field(
        default_factory=list,
        description="Started before the run's steps, stopped at its end; steps reach each "
        "by its name.",
    )
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("needs", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def executor_options(self) -> tuple[tuple[str, str], ...]:
        """The job's executor tables as ``EXECUTOR.KEY`` text pairs, sorted: opaque to
        the plan; the executor named by the prefix reads and checks its own at submit
        (``executors/htcondor/description.py:job_options``)."""
        spark = self.spark.model_dump(exclude_defaults=True) if self.spark else {}
        tables = {"htcondor": self.htcondor, "spark": spark}
        pairs = [(f"{name}.{k}", value_text(v)) for name, t in tables.items() for k, v in t.items()]
        return tuple(sorted(pairs))


class PushTriggerSpec(_Strict):
    """Which pushes to a Conveyor server (or a webhook) start a run (GitHub Actions'
    filter patterns: ``*`` stops at ``/``, ``**`` does not, ``!`` excludes)."""

    branches: list[str] = Field(default_factory=lambda: ["**"])
    tags: list[str] = Field(default_factory=list)

    @field_validator("branches", "tags", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("branches", "tags")
    @classmethod
    def _some_positive(cls, value: list[str]) -> list[str]:
        if value and all(p.startswith("!") for p in value):
            raise ValueError(
                f"{value} holds only negative patterns, which match nothing; "
                "start with '**' to mean every other one"
            )
        return value


class ScheduleSpec(_Strict):
    """A cron schedule (five fields, UTC) on a branch of the server's repository."""

    cron: str = Field(min_length=1)
    branch: str = "main"


class TriggersSpec(_Strict):
    """``on:``: when a server runs the pipeline by itself (default: a push to any branch)."""

    push: PushTriggerSpec | None = Field(default_factory=PushTriggerSpec)
    schedule: list[ScheduleSpec] = Field(default_factory=list)


_DATASET_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}(@[A-Za-z0-9_-]*)?(\^|~[0-9]*)*(:\S*)?")
DatasetRefText = Annotated[
    str,
    Field(max_length=1024),
]
"""``NAME@REF[:/PATH]``: a dataset, a branch or commit (``^``/``~N`` ancestry), a path."""

SweepValues = Annotated[list[str | int | float | bool], Field(min_length=1, max_length=1000)]
"""The values a sweep gives one parameter."""


class PipelineSpec(_Strict):
    """A whole pipeline as the user declared it."""

    name: str = "pipeline"
    on: TriggersSpec = Field(
        default_factory=TriggersSpec,
        description="Server triggers: push (branches/tags globs) and schedule (cron).",
    )
    params: dict[Name, ParamSpec] = Field(default_factory=dict)
    sweep: dict[Name, SweepValues] = Field(
        default_factory=dict,
        description="`conveyor run --sweep`: values of parameters, one run per combination.",
    )
    env: dict[str, Scalar] = Field(default_factory=dict)
    datasets: dict[str, DatasetRefText] = Field(
        default_factory=dict,
        max_length=64,
        description="Dataset commits checked out into the workspace before the run, by "
        "path: `data/raw: images@master` (NAME@REF[:/PATH]); the run records which commit "
        "each ref named, for lineage.",
    )
    jobs: dict[Name, JobSpec] = Field(min_length=1)

    _source: SourceMap | None = PrivateAttr(default=None)
    _format: str = PrivateAttr(default="conveyor")
    _read_files: tuple[str, ...] = PrivateAttr(default=())
    _warnings: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("params", mode="before")
    @classmethod
    def _param_shorthand(cls, value: object) -> object:
        """``lr: 0.1`` is shorthand for ``lr: {type: float, default: 0.1}``."""
        if not isinstance(value, dict):
            return value
        return {k: _expand_param(v) for k, v in value.items()}

    @field_validator("datasets")
    @classmethod
    def _dataset_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for path, ref in value.items():
            if not _DATASET_REF.fullmatch(ref):
                raise ValueError(
                    f"{path}: {ref[:100]!r} is not a dataset ref: write NAME, "
                    "NAME@BRANCH or NAME@COMMIT, then any ^ or ~N, then :/PATH if you like"
                )
            parts = path.split("/")
            if (
                not path
                or path.startswith("/")
                or any(p in ("", ".", "..") for p in parts)
                or parts[0] == ".conveyor"
                or parts[0] == ".git"
                or len(path) > 1024
            ):
                raise ValueError(
                    f"{path!r} must be a relative path inside the project "
                    "(no '..', '.', empty parts, .git or .conveyor)"
                )
        paths = sorted(value)
        for a, b in itertools.pairwise(paths):
            if b.startswith(a + "/"):
                raise ValueError(f"{b!r} is inside {a!r}; give separate directories")
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep_declared(
        cls, value: dict[str, list[str | int | float | bool]], info: ValidationInfo
    ) -> dict[str, list[str | int | float | bool]]:
        unknown = sorted(set(value) - set(info.data.get("params", {})))
        if unknown:
            raise ValueError(
                f"sweep names {', '.join(unknown)}, not declared under params: declare each "
                "parameter a sweep varies"
            )
        return value

    @property
    def source(self) -> SourceMap:
        return self._source or SourceMap("<memory>")

    @property
    def format(self) -> str:
        return self._format

    @property
    def read_files(self) -> tuple[str, ...]:
        """Files besides the pipeline file that loading it read (e.g. action manifests)."""
        return self._read_files

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the loader accepted but ignored (e.g. DataTorch triggers), to show the user."""
        return self._warnings

    def with_read_files(self, paths: tuple[str, ...]) -> PipelineSpec:
        self._read_files = paths
        return self

    def with_warnings(self, warnings: tuple[str, ...]) -> PipelineSpec:
        self._warnings = warnings
        return self

    def with_source(self, source: SourceMap, fmt: str) -> PipelineSpec:
        self._source = source
        self._format = fmt
        return self


def _expand_param(value: object) -> object:
    if isinstance(value, dict):
        return value
    if isinstance(value, bool):
        return {"type": "bool", "default": value}
    if isinstance(value, int):
        return {"type": "int", "default": value}
    if isinstance(value, float):
        return {"type": "float", "default": value}
    if value is None:
        return {"type": "str"}
    return {"type": "str", "default": value}
