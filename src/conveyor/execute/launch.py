"""What a step needs before it is served from the cache or submitted: where it runs, its
inputs' digests and its fingerprint; then the invocation an executor receives."""

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.domain.conditions import RunFacts
from conveyor.domain.jsonshape import TextDict
from conveyor.domain.tracking import tracking_path
from conveyor.execute.actionstate import ActionState
from conveyor.execute.placement import Placement
from conveyor.execute.runinfo import run_environment
from conveyor.execute.stepenv import step_environment
from conveyor.execute.workspace import MissingInputError, Workspace
from conveyor.metadata.records import InputRecord, OutputRecord, RunRecord
from conveyor.plan.fingerprint import keyed, step_parts
from conveyor.plan.model import StepPlan

if TYPE_CHECKING:
    from conveyor.execute.images import ContainerRuntime
    from conveyor.executors.base import Handle, Invocation

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,\[\]-]")
DATATORCH_API = str(Path(__file__).resolve().parents[1] / "plugins" / "datatorch_api")
"""The directory of the ``datatorch`` module DataTorch python actions import."""


@dataclass
class RunOptions:
    """How the runner runs this run's steps: the options the caller chose."""

    parallelism: int = 1
    force: bool = False
    environment_digest: str = ""
    containers_on_missing: str = "fail"
    """No container runtime is configured: ``fail`` image steps or run them on the ``host``."""
    plugins: Mapping[str, str] = field(default_factory=dict)
    """Plugin image (without tag) -> host command, for image steps without commands."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> value, resolved by the caller; never recorded."""
    secret_key: bytes = b""
    """The project's key for the HMACs that put secret values into fingerprints."""
    runtime: "ContainerRuntime | None" = None
    """Where image steps run (``[containers] runtime``); None: no runtime here."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Set for every step but not part of any fingerprint (a server's secrets)."""
    keep_dir: Path | None = None
    """Where copies of hand-edited outputs go before they are replaced (None: no check)."""
    on_warning: Callable[[str], None] | None = None
    privileged: bool = False
    """Whether steps may ask for a privileged container (``[containers] privileged``)."""
    host_volumes: tuple[str, ...] = ()
    """Directories of the machine steps may mount (``[containers] host_volumes``)."""
    volume_dir: Path | None = None
    """Where the run's temporary directories (steps' ``volumes``) go: ``DIR/RUN/JOB/NAME``."""
    facts: RunFacts = field(default_factory=RunFacts)
    """What the steps' conditions are checked against: the run's trigger and host."""


class Placed(NamedTuple):
    """A step placed and its action inputs resolved, in the loop; what is left to key it
    (hashing its declared inputs) is file work that may run on another thread."""

    step: StepPlan
    placement: Placement
    action: dict[str, Any] | None
    upstream: dict[str, dict[str, str]]
    failed_so_far: bool


class Prepared(NamedTuple):
    """A step ready for the cache decision: what it runs, reads and is keyed on."""

    placement: Placement
    inputs: list[InputRecord]
    parts: dict[str, Any]
    fingerprint: str
    failed_so_far: bool
    """The run status the fingerprint saw; the step's environment says the same."""


class Refused(NamedTuple):
    """Why the step cannot run at all (a retry would not help)."""

    reason: str


@dataclass(eq=False)  # a holder of services, never compared
class Launcher:
    """Places, keys and builds the invocations of a run's steps."""

    run: RunRecord
    workspace: Workspace
    actions: ActionState
    log_dir: Path
    options: RunOptions
    default_executor: str
    starts_containers: Callable[[str], bool]
    """Whether the executor of that name runs image steps."""
    _placements: dict[str, Placement] = field(default_factory=dict, init=False)
    _host_mounts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, init=False)
    """Step id -> its host directories (resolved, allowed) and their paths in the container."""

    def place_all(self, steps: Iterable[StepPlan]) -> None:
        """Resolve (and maybe pull) every image before the loop starts, so a pull never
        holds up polling, deadlines or a cancel; a failure is kept as the step's refusal."""
        for step in steps:
            self._place(step)

    def _place(self, step: StepPlan) -> Placement:
        if step.id not in self._placements:
            executor = step.executor or self.default_executor
            if step.privileged and not self.options.privileged:
                refusal = (
                    f"step {step.id} asks for a privileged container, which this project does "
                    "not allow; a lead may set `privileged = true` under [containers] in "
                    ".conveyor/config.toml (a server never allows it)"
                )
                self._placements[step.id] = Placement(step.command, refusal=refusal)
                return self._placements[step.id]
            mounts, why = self._host_volumes(step)
            if why is not None:
                self._placements[step.id] = Placement(step.command, refusal=why)
                return self._placements[step.id]
            self._host_mounts[step.id] = mounts
            if step.ci is not None:
                # Drone's substitution: loaded only for the steps of a Drone/Dotscience file
                from conveyor.plan.dronesubst import substitute_shell
                from conveyor.plan.shell import ShellQuoteError

                try:
                    command = substitute_shell(step.command, self._ci_variables(step))
                except ShellQuoteError as exc:
                    refusal = f"step {step.id}: a Drone substitution in its commands: {exc}"
                    self._placements[step.id] = Placement(step.command, refusal=refusal)
                    return self._placements[step.id]
                step = replace(step, command=command)
            if step.image is None:  # the container code loads only for a step with an image
                self._placements[step.id] = Placement(step.command)
                return self._placements[step.id]
            from conveyor.execute.images import place_step

            self._placements[step.id] = place_step(
                step,
                self.options.runtime,
                self.options.containers_on_missing,
                self.options.plugins,
                executor,
                self.starts_containers(executor),
            )
        return self._placements[step.id]

    def begin(
        self, step: StepPlan, outputs: Mapping[str, list[OutputRecord]], failed_so_far: bool
    ) -> Placed | Refused:
        """Place the step and resolve its action inputs (run state: the loop's thread)."""
        placement = self._place(step)
        action = self.actions.prepare(step) if step.action is not None else None
        refusal = placement.refusal
        if isinstance(action, str):
            refusal, action = action, None
        if refusal is not None:
            return Refused(refusal)
        # declared inputs are keyed by content; a step that declares none is keyed on
        # everything its dependencies produced, so it still reruns when they change
        upstream = (
            {}
            if step.inputs
            else {d: {o.path: o.digest for o in outputs.get(d, [])} for d in step.needs}
        )
        return Placed(step, placement, action, upstream, failed_so_far)

    def key(
        self, placed: Placed, seen: Mapping[str, os.stat_result] | None = None
    ) -> Prepared | Refused:
        """Hash the step's declared inputs and key it (files only: any thread). ``seen``:
        the inputs' ``lstat`` this thread took a moment ago (``Workspace.small_files``)."""
        step, placement = placed.step, placed.placement
        try:
            inputs = self.workspace.resolve_inputs(step.inputs, step.optional_inputs, seen)
        except MissingInputError as exc:
            return Refused(str(exc))
        digests = {i.path: i.digest for i in inputs if i.path not in step.unkeyed_inputs}
        if step.notebook is not None and step.notebook in digests:
            from conveyor.execute.notebooks import code_cells_digest

            cells = code_cells_digest(self.workspace.root / step.notebook)
            digests[step.notebook] = cells or digests[step.notebook]
        parts = step_parts(
            step,
            command=placement.command,
            inputs=digests,
            upstream=placed.upstream,
            environment=self.options.environment_digest,
            container=placement.key,
            action=placed.action,
            secret_values=self.options.secrets,
            secret_key=self.options.secret_key,
            failed_so_far=placed.failed_so_far,
        )
        key, text = keyed(parts)
        return Prepared(placement, inputs, TextDict(parts, text), key, placed.failed_so_far)

    def log_path(self, step: StepPlan, attempt: int) -> Path:
        """The step's log; a retry appends to it under a marker line."""
        log_path = self.log_dir / f"{_UNSAFE.sub('_', step.id)}.log"
        if attempt > 1:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"\n--- conveyor: attempt {attempt} ---\n")
        return log_path

    def invocation(
        self,
        step: StepPlan,
        attempt: int,
        prepared: Prepared,
        log_path: Path,
    ) -> "Invocation":
        env = self._env(step, attempt, prepared.failed_so_far)
        placement = prepared.placement
        image_id = placement.image_id if self.options.runtime is not None else None
        from conveyor.executors.base import Invocation  # a step runs: lean no-op runs

        return Invocation(
            key=f"{self.run.id}/{step.id}/{attempt}",
            command=placement.command,
            env=env,
            workdir=self.workspace.root,
            log_path=log_path,
            inputs=tuple(i.path for i in prepared.inputs),
            outputs=(*step.outputs, tracking_path(step.id)),  # brought back if written
            resources=step.resources,
            timeout=step.timeout,
            options=dict(step.options),
            volumes=self._volumes(step) if image_id is not None else (),
            privileged=step.privileged and image_id is not None,
            image_id=image_id,
        )

    def _host_volumes(self, step: StepPlan) -> tuple[tuple[tuple[str, str], ...], str | None]:
        """The step's host directories as they will be mounted (resolved), or why not."""
        if not step.host_volumes:
            return (), None
        from conveyor.execute.hostvolumes import allowed_host_path  # rare: lean start-up

        mounts = []
        for host, path in step.host_volumes:
            real, why = allowed_host_path(host, self.options.host_volumes)
            if real is None:
                return (), f"step {step.id}: {why}"
            mounts.append((real, path))
        return tuple(mounts), None

    def _volumes(self, step: StepPlan) -> tuple[tuple[str, str], ...]:
        """The step's temporary directories, made on first use (one per job and name),
        and its host directories (checked when it was placed)."""
        mounts = list(self._host_mounts.get(step.id, ()))
        if self.options.volume_dir is None:
            return tuple(mounts)
        for name, path in step.volumes:
            host = self.options.volume_dir / self.run.id / _UNSAFE.sub("_", step.job) / name
            host.mkdir(parents=True, exist_ok=True)
            mounts.append((str(host), path))
        return tuple(mounts)

    def started(
        self,
        step: StepPlan,
        attempt: int,
        handle: "Handle",
        executor: str,
        miss: str,
        prepared: Prepared,
    ) -> dict[str, Any]:
        """The ``step-started`` event's data: where it runs, why it was not a cache hit."""
        data: dict[str, Any] = {
            "attempt": attempt,
            "backend_id": handle.backend_id,
            "executor": executor,
            "cache_miss": miss,
        }
        if step.image is not None:  # provenance: the image, its ID and where it ran
            runtime = self.options.runtime
            label = runtime.label if runtime is not None else None
            data.update(prepared.placement.provenance(step, label))
        if step.action is not None:
            data.update({"action": step.action, "action_commit": step.action_commit})
        return data

    def _ci_variables(self, step: StepPlan) -> dict[str, str]:
        from conveyor.execute.civars import ci_variables

        return ci_variables(step, self.run, self.options.facts, str(self.workspace.root))

    def _env(self, step: StepPlan, attempt: int, failed_so_far: bool) -> dict[str, str]:
        env = {
            **self.options.extra_env,  # a server's secrets
            **run_environment(self.run),  # the run's facts; the step's own variables win
            **step_environment(step, self.run.id, str(self.workspace.root), attempt, failed_so_far),
        }
        if step.ci is not None:
            from conveyor.plan.dronesubst import substitute

            variables = self._ci_variables(step)
            env = {**variables, **env}
            env.update((name, substitute(value, variables)) for name, value in step.env)
        for name, secret in step.secrets:
            env[name] = self.options.secrets[secret]
        env.update(self.actions.environment(step))
        if step.action_rules == "datatorch":  # `import datatorch`, as DataTorch's runner gives
            given = env.get("PYTHONPATH") or os.environ.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (DATATORCH_API, given) if p)
        return env
