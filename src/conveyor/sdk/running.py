"""Starting runs and reproducing past ones."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.domain.conditions import RunFacts, TriggerContext
from conveyor.domain.envnames import EXAMPLES, changes_execution
from conveyor.domain.states import RunStatus
from conveyor.domain.types import ParamValue
from conveyor.errors import ExecutorError, NotFoundError, UsageError
from conveyor.execute.reporting import Reporter, SilentReporter
from conveyor.execute.runner import Runner, RunOptions
from conveyor.execute.workspace import Workspace
from conveyor.executors.registry import run_executor
from conveyor.metadata.records import EventRecord, RunRecord
from conveyor.metadata.repository import WriteBatch
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.listing import ProjectFiles
from conveyor.sdk.plancache import compile_cached, run_trigger
from conveyor.sdk.project import Project, hostname
from conveyor.sdk.runfacts import local_facts
from conveyor.vcs.git import GitQuery, GitState, add_worktree, git_state, remove_worktree

if TYPE_CHECKING:
    from conveyor.execute.images import ContainerRuntime
    from conveyor.execute.services import RunningServices
    from conveyor.executors.base import Executor, Handle
    from conveyor.sdk.datasets.checkouts import CheckedOut


@dataclass
class RunRequest:
    """What the caller asks of a run: parameters, selection, cache and executor choices."""

    params: Mapping[str, ParamValue] = field(default_factory=dict)
    """Parameter values by name: typed, or text that the compiler reads as the declared
    type (the command line's ``-p name=value``)."""
    only: Sequence[str] = ()
    force: bool = False
    parallelism: int | None = None
    executor: str | None = None
    wait: bool = True
    trigger: str = "manual"
    payload: Mapping[str, Any] = field(default_factory=dict)
    """The trigger's event (``${{ event.* }}``): ``conveyor run --payload FILE.json``, a
    webhook's body, a schedule's facts on a server."""
    project_id: str = ""
    """``${{ pipeline.projectId }}``: a server's project name (default: the directory's)."""
    run_id: str | None = None
    """A server picks the id when it queues the run; otherwise a fresh one."""
    who: str | None = None
    """Who asked for the run (default: the operating-system user)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every step, kept out of fingerprints (secrets)."""
    git: GitState | None = None
    """The checkout's state when the caller made it (a server's fresh worktree)."""
    secrets_from_environment: bool = True
    """Whether a step's ``secrets`` come from this process's environment (a local run);
    a server sets False: only ``env`` (its project's secrets), never its own variables."""
    cache_scope: str = ""
    """Mixed into every fingerprint: runs share cache entries only within one scope
    (a server gives each project its own, and changes it when its secrets change)."""
    executors_allowed: frozenset[str] | None = None
    """The executors steps may run on (None: any); a server allows those whose steps
    cannot reach its data."""
    event: str | None = None
    """The Drone event a local run acts as (``conveyor run --event``; default ``push``)."""
    cron: str = ""
    """With ``event="cron"``: the cron job's name (Drone's ``trigger.cron``)."""
    target: str = ""
    """With ``event="promote"`` or ``"rollback"``: where it deploys (``trigger.target``)."""
    facts: RunFacts | None = None
    """What the steps' conditions are checked against (a server's, from the queued run);
    None: this checkout's facts (:func:`conveyor.sdk.runfacts.local_facts`)."""
    dataset_pins: Mapping[str, str] = field(default_factory=dict)
    """Workspace path -> the dataset commit to check out there whatever the pipeline's
    ref names now (a rerun reads the commits the original run read)."""
    dataset_scope: str = ""
    """Whose datasets the pipeline's ``datasets:`` name: empty, the project's own (a local
    run); a server's project name, that project's datasets in the server's records
    (``ScopedDatasets``: another project's are never reachable)."""
    cache_key: bytes = b""
    """The key for the HMACs of secret values (a server passes its project's, which
    outlives the run's state); empty: the project's own ``.conveyor/cache-key``."""


@dataclass(eq=False)  # a holder of services, never compared
class RunHooks:
    """Where a run reports to while it runs: progress, waits, warnings, its runner."""

    reporter: Reporter = field(default_factory=SilentReporter)
    on_wait: Callable[[str], None] | None = None
    """Called with the lock holder when another run is in progress."""
    on_runner: Callable[[Runner], None] | None = None
    """Receives the runner before it starts (e.g. to wire Ctrl-C to request_cancel)."""
    on_warning: Callable[[str], None] | None = None
    """Called with what the loader accepted but ignored (e.g. DataTorch triggers)."""


def compile_project(
    project: Project, params: Mapping[str, ParamValue] | None = None, only: Sequence[str] = ()
) -> ExecutionPlan:
    """Load and compile the pipeline (always from the file: no plan cache)."""
    from conveyor.plan.compile import compile_plan

    spec = project.load_spec()
    return compile_plan(spec, params or {}, only, ProjectFiles(project.root), run_trigger(project))


def _record_warnings(project: Project, run_id: str, warnings: list[str]) -> None:
    """The plan's warnings (e.g. an action's tag that moved): part of the run's record."""
    if warnings:
        events = [
            EventRecord(run_id, "warning", time.time(), None, {"message": w}) for w in warnings
        ]
        project.records.write(WriteBatch(events=events))


def _read_plan(
    project: Project, request: RunRequest, hooks: RunHooks
) -> tuple[TriggerContext, ExecutionPlan, list[str], dict[str, str]]:
    """The run's trigger, plan (cached), the loader's warnings (told to the hooks) and
    the values of the secrets its steps are given."""
    trigger = run_trigger(project, request.payload, request.project_id)
    plan, warnings = compile_cached(project, request.params, request.only, trigger=trigger)
    # a server passes its project's secrets in request.env; a local run has the caller's
    if request.secrets_from_environment:
        secret_values = resolve_secrets(plan, {**os.environ, **request.env}, warnings=warnings)
    else:
        secret_values = resolve_secrets(plan, request.env, local=False, warnings=warnings)
    for warning in warnings:
        if hooks.on_warning is not None:
            hooks.on_warning(warning)
    return trigger, plan, warnings, secret_values


def start_run(
    project: Project,
    request: RunRequest,
    hooks: RunHooks | None = None,
    executors: Mapping[str, Executor] | None = None,
) -> RunRecord:
    """Compile, record and execute a run; returns its final record.

    ``executors``: executors by name to use instead of loading them from the registry
    (a test's fake, a wrapper); the caller closes them. Others are loaded and closed here.
    """
    hooks = hooks or RunHooks()
    # git's answer is waited for once the plan is read: its status works meanwhile
    query = GitQuery(project.root) if request.git is None else None
    try:
        trigger, plan, warnings, secret_values = _read_plan(project, request, hooks)
        git = request.git if query is None else query.result()
    except BaseException:
        if query is not None:
            query.discard()
        raise
    assert git is not None
    conditional = any(s.conditions or s.ci for s in plan.steps)
    facts = request.facts or local_facts(
        project.root, request.event, needed=conditional, cron=request.cron, target=request.target
    )
    executor_name = request.executor or project.settings.executor
    given = dict(executors or {})
    executors = _load_executors(project, plan, executor_name, request.executors_allowed, given)
    parallelism = (
        request.parallelism
        or project.settings.parallelism
        or executors[executor_name].default_parallelism
    )
    try:
        with project.run_lock(request.wait, hooks.on_wait):
            read = _check_out_datasets(project, plan, request)
            if read:  # datums may glob over what was checked out: their listing changed
                plan, _ = compile_cached(project, request.params, request.only, trigger=trigger)
            run = RunRecord(
                id=request.run_id or os.urandom(6).hex(),
                pipeline=plan.pipeline,
                status=RunStatus.RUNNING,
                commit=git.commit,
                dirty=git.dirty,
                diff_digest=git.diff_digest,
                params=dict(plan.params),
                who=request.who or _who(),
                host=hostname(),
                pid=os.getpid(),
                created_at=time.time(),
                executor=executor_name,
                spec_path=os.path.relpath(project.pipeline_file, git.toplevel),
                trigger=request.trigger,
                workdir=str(project.root),
            )
            run.started_at = run.created_at
            project.records.create_run(run, request.project_id)  # gives run.number
            project.records.record_dataset_reads([r.record(run.id) for r in read])
            _record_warnings(project, run.id, warnings)
            project.store.clean_tmp()
            runtime = _container_runtime(project, plan)
            try:
                services = _start_services(project, plan, run, runtime, request)
            except ExecutorError as exc:  # no step ran: the run fails with the reason
                _fail_before_steps(project, run, str(exc), hooks.reporter, plan)
                return run
            runner = Runner(
                run=run,
                plan=plan,
                executors=executors,
                default_executor=executor_name,
                workspace=Workspace(project.root, project.store, project.digests),
                records=project.records,
                log_dir=project.log_dir(run.id),
                reporter=hooks.reporter,
                options=RunOptions(
                    parallelism=parallelism,
                    force=request.force,
                    environment_digest=_scoped(project.environment_digest(), request.cache_scope),
                    containers_on_missing=project.settings.containers.on_missing,
                    plugins=project.settings.containers.plugins,
                    secrets=secret_values,
                    secret_key=(request.cache_key or project.cache_key()) if secret_values else b"",
                    runtime=services.step_runtime if services else runtime,
                    extra_env={**services.env, **request.env} if services else request.env,
                    keep_dir=project.state_dir / "kept",
                    volume_dir=project.state_dir / "volumes",
                    privileged=project.settings.containers.privileged,
                    host_volumes=project.settings.containers.host_volumes,
                    on_warning=hooks.on_warning,
                    facts=facts,
                ),
            )
            if hooks.on_runner is not None:
                hooks.on_runner(runner)
            try:
                runner.execute()
            finally:  # the run's services and temporary directories end with it
                if services is not None:
                    services.stop()
                shutil.rmtree(project.state_dir / "volumes" / run.id, ignore_errors=True)
            if runner.leftovers:  # its executor broke and could not remove them
                _record_leftovers(project, run.id, runner.leftovers)
    finally:
        for name, executor in executors.items():
            if name not in given:
                executor.close()
        project.digests.close()
    return run


def _check_out_datasets(
    project: Project, plan: ExecutionPlan, request: RunRequest
) -> list[CheckedOut]:
    if not plan.datasets:
        return []
    from conveyor.sdk.datasets.checkouts import check_out
    from conveyor.sdk.datasets.scoped import ScopedDatasets
    from conveyor.sdk.datasets.service import Datasets

    scope = request.dataset_scope
    records = ScopedDatasets(project.records, scope) if scope else None
    return check_out(Datasets(project, records), plan.datasets, request.dataset_pins)


def _record_leftovers(project: Project, run_id: str, left: list[tuple[str, Handle]]) -> None:
    from conveyor.sdk.recovery import LEFTOVERS_EVENT, note_leftovers

    data = {"handles": [[name, h.key, h.backend_id] for name, h in left]}
    event = EventRecord(run_id, LEFTOVERS_EVENT, time.time(), None, data)
    project.records.write(WriteBatch(events=[event]))
    note_leftovers(project.state_dir, run_id)


def _start_services(
    project: Project,
    plan: ExecutionPlan,
    run: RunRecord,
    runtime: ContainerRuntime | None,
    request: RunRequest,
) -> RunningServices | None:
    """The run's services, started and recorded (a later command ends what a killed run
    left of them: :func:`conveyor.sdk.project.mark_interrupted`)."""
    if not plan.services:
        return None
    from conveyor.execute.services import SERVICES_EVENT, start_services  # rare: lean start-up

    log_dir = project.log_dir(run.id)
    log_dir.mkdir(parents=True, exist_ok=True)
    # a server gives the executors its steps may use: its services never run on its host
    host_allowed = request.executors_allowed is None
    environ = os.environ if request.secrets_from_environment else {"PATH": os.defpath}
    services = start_services(
        plan.services, runtime, run.id, log_dir, project.root, environ, host_allowed
    )
    event = EventRecord(run.id, SERVICES_EVENT, time.time(), None, services.record())
    project.records.write(WriteBatch(events=[event]))
    return services


def _fail_before_steps(
    project: Project, run: RunRecord, error: str, reporter: Reporter, plan: ExecutionPlan
) -> None:
    run.status, run.ended_at, run.error = RunStatus.FAILED, time.time(), error
    batch = WriteBatch(run_updates={run.id: (run.status, run.ended_at, error)})
    finished = EventRecord(run.id, "run-finished", run.ended_at, None, {"status": "failed"})
    batch.events.append(finished)
    project.records.write(batch)
    reporter.run_started(run, plan)
    reporter.run_finished(run, run.status)


def _container_runtime(project: Project, plan: ExecutionPlan) -> ContainerRuntime | None:
    """The container runtime for image steps and services (looked for only when one
    names an image)."""
    if not any(step.image for step in plan.steps) and not any(s.image for s in plan.services):
        return None
    from conveyor.execute.images import find_runtime

    settings = project.settings.containers
    return find_runtime(settings.runtime, network=settings.network)


def resolve_secrets(
    plan: ExecutionPlan,
    environ: Mapping[str, str],
    local: bool = True,
    warnings: list[str] | None = None,
) -> dict[str, str]:
    """Secret values: each from the environment variable of its name (a local run) or the
    project's secret of that name (a server). A Drone or Dotscience step's missing secret
    is empty, as Drone's runner leaves it, with a line in ``warnings``; elsewhere a
    missing secret is bad input."""
    values: dict[str, str] = {}
    for step in plan.steps:
        for variable, secret in step.secrets:
            if changes_execution(variable):
                raise UsageError(
                    f"step {step.id} sets {variable} from the secret {secret!r}, but "
                    f"{variable} changes how steps run ({EXAMPLES}), so no secret may set it"
                )
            if secret not in environ and step.ci is not None:  # Drone sets it empty
                if secret not in values and warnings is not None:
                    how = f"export {secret}=..." if local else "a lead sets it"
                    warnings.append(
                        f"the secret {secret!r} is not set: {variable} of step {step.id} is "
                        f"empty, as Drone leaves a secret it does not have ({how})"
                    )
                values[secret] = ""
                continue
            if secret not in environ:
                where = (
                    "set; for a local run, secrets come from the environment variable of "
                    f"the same name (export {secret}=...)"
                    if local
                    else f"a secret of the project; a lead sets it (PUT .../secrets/{secret})"
                )
                raise UsageError(
                    f"step {step.id} sets {variable} from the secret {secret!r}, which is not "
                    + where
                )
            values[secret] = environ[secret]
    return values


def _scoped(digest: str, scope: str) -> str:
    if not scope:
        return digest
    import hashlib

    return hashlib.blake2b(f"{scope}\0{digest}".encode(), digest_size=16).hexdigest()


def _load_executors(
    project: Project,
    plan: ExecutionPlan,
    default: str,
    allowed: frozenset[str] | None,
    given: Mapping[str, Executor],
) -> dict[str, Executor]:
    """The default executor and every one a job names with ``runs-on`` (``given`` ones
    as they are, the others from the registry). When one fails to load, the ones loaded
    before it are closed (a Spark session or a pool connection is not left open)."""
    names = {default} | {s.executor for s in plan.steps if s.executor}
    refused = sorted(names - allowed) if allowed is not None else []
    if allowed is not None and refused:
        raise UsageError(
            f"the pipeline asks for the {refused[0]} executor, which this server does not "
            f"allow (allowed: {', '.join(sorted(allowed))}); a server admin allows it with "
            f"--allow-executor {refused[0]}"
        )
    settings = project.settings.executors
    loaded: dict[str, Executor] = {}
    try:
        for name in sorted(names):
            loaded[name] = given[name] if name in given else run_executor(name, settings.get(name))
    except BaseException:
        for name, executor in loaded.items():  # the caller closes only what it gave
            if name not in given:
                with contextlib.suppress(Exception):  # the load's error is the one to tell
                    executor.close()
        raise
    return loaded


def _who() -> str:
    # getpass.getuser()'s answer, without importing getpass (and termios) on every run
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    import pwd

    try:
        return pwd.getpwuid(os.getuid())[0]
    except (KeyError, OSError):
        return str(os.getuid())


class OutputComparison(NamedTuple):
    step_id: str
    path: str
    expected: str
    actual: str | None

    @property
    def matches(self) -> bool:
        return self.expected == self.actual


@dataclass
class RerunResult:
    """A rerun and how its outputs compare with the original run's."""

    original: RunRecord
    run: RunRecord
    comparisons: list[OutputComparison]
    warnings: list[str]

    @property
    def reproduced(self) -> bool:
        return self.run.status == RunStatus.SUCCEEDED and all(c.matches for c in self.comparisons)


def rerun(
    project: Project, ref: str, hooks: RunHooks | None = None, keep: bool = False
) -> RerunResult:
    """Run a past run again from its commit in a temporary worktree, without the cache,
    and compare every output digest with the original's."""
    original = project.resolve_run(ref)
    if original.commit is None:
        raise UsageError(f"run {original.id} was made before the first commit; it cannot be rerun")
    warnings = []
    if original.dirty:
        warnings.append(
            f"run {original.id} had uncommitted changes; the rerun uses commit "
            f"{original.commit[:12]} alone, so outputs may differ"
        )
    git = git_state(project.root)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f"conveyor-rerun-{original.id}-"))
    worktree = tmp / "tree"
    add_worktree(git.toplevel, original.commit, worktree)
    try:
        copy_root = worktree / project.root.relative_to(git.toplevel)
        # the file the run used (it may have been named with -f, or be a foreign format)
        used = worktree / original.spec_path if original.spec_path else None
        copy = Project(
            copy_root,
            used if used is not None and used.is_file() else None,
            state_dir=project.state_dir,
        )
        _bring_untracked_inputs(project, copy, original)
        request = RunRequest(
            params=original.params,
            force=True,
            executor=original.executor,
            trigger=f"rerun:{original.id}",
            dataset_pins={r.path: r.commit for r in project.records.dataset_reads(original.id)},
        )
        run = start_run(copy, request, hooks)
    finally:
        if not keep:
            remove_worktree(git.toplevel, worktree)
            shutil.rmtree(tmp, ignore_errors=True)
    return RerunResult(original, run, _compare(project, original, run), warnings)


def _bring_untracked_inputs(project: Project, copy: Project, original: RunRecord) -> None:
    """Inputs the commit does not hold (data files) come from the workspace or the store,
    but only with the content the original run read."""
    records = project.records
    # a dataset's files come from its pinned commit when the rerun starts
    checked_out = tuple(r.path + "/" for r in records.dataset_reads(original.id))
    for step in records.step_runs(original.id):
        source_run = step.cached_from or original.id
        for item in records.inputs_of(source_run, step.step_id):
            if os.path.isabs(item.path) or (checked_out and item.path.startswith(checked_out)):
                continue
            target = copy.root / item.path
            if target.exists():
                continue
            current = project.root / item.path
            if current.is_file() and project.digests.digest(current) == item.digest:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(current, target)
            elif project.store.has(item.digest):
                project.store.checkout_file(item.digest, target)
            elif not any(
                o.path == item.path for s in records.step_runs(original.id) for o in s.outputs
            ):
                raise NotFoundError(
                    f"input {item.path} of step {step.step_id} is not in commit "
                    f"{(original.commit or '')[:12]} and its recorded content is gone"
                )


def _compare(project: Project, original: RunRecord, run: RunRecord) -> list[OutputComparison]:
    new = {
        s.step_id: {o.path: o.digest for o in s.outputs} for s in project.records.step_runs(run.id)
    }
    comparisons = []
    for step in project.records.step_runs(original.id):
        for output in step.outputs:
            actual = new.get(step.step_id, {}).get(output.path)
            comparisons.append(OutputComparison(step.step_id, output.path, output.digest, actual))
    return comparisons
