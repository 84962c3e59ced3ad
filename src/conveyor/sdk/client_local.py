"""The SDK's ``Client`` on the project in a directory: the same calls the CLI makes
(``start_run``, ``run_json``, ``step_logs``, ``fetch_outputs``, ``lineage``).

A run started here runs in a thread of this process (a notebook stays usable while it
runs); ``cancel`` asks its runner to stop, as the CLI's Ctrl-C does. A run started by
another ``conveyor`` process on this machine is asked to stop with SIGTERM, which the
CLI turns into the same clean cancel.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import NotFoundError, UsageError
from conveyor.sdk.backend import StartRequest, cache_place
from conveyor.sdk.project import Project, hostname

if TYPE_CHECKING:  # the runner and the plan load only when a run starts here
    from conveyor.domain.states import RunStatus
    from conveyor.execute.runner import Runner
    from conveyor.metadata.records import RunRecord, StepRunRecord
    from conveyor.plan.model import ExecutionPlan

OUTPUTS_CACHE = "cache/outputs"
"""Under the state directory: outputs handed out as paths (hard links into the store)."""


class _Started:
    """A ``Reporter`` that tells the caller's thread that the run is recorded, and its
    plan's steps (how many, what each needs)."""

    def __init__(self) -> None:
        self.recorded = threading.Event()
        self.steps: int | None = None
        self.needs: dict[str, list[str]] = {}

    def run_started(self, run: RunRecord, plan: ExecutionPlan) -> None:
        self.steps = len(plan.steps)
        self.needs = {s.id: list(s.needs) for s in plan.steps}
        self.recorded.set()

    def step_started(self, step_id: str, attempt: int) -> None:
        pass

    def step_finished(self, record: StepRunRecord) -> None:
        pass

    def run_finished(self, run: RunRecord, status: RunStatus) -> None:
        pass


class _Launch:
    """A run started by this client: its thread, its runner, what it failed with."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.reporter = _Started()
        self.runner: Runner | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class LocalBackend:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.where = f"project {project.root}"
        self._launches: dict[str, _Launch] = {}

    def list_runs(self, limit: int) -> list[dict[str, Any]]:
        self.project.recover_interrupted()
        return [r.to_json() for r in self.project.records.list_runs(limit)]

    def get_run(self, ref: str) -> dict[str, Any]:
        from conveyor.sdk.inspect import run_json

        launch = self._launches.get(ref)
        if launch is not None and not launch.reporter.recorded.is_set():
            launch.raise_error()
        return run_json(self.project, self.project.resolve_run(ref))

    def start(self, request: StartRequest) -> str:
        import secrets

        run_id = secrets.token_hex(6)
        launch = _Launch(run_id)
        thread = threading.Thread(
            target=self._execute, args=(launch, request), name=f"conveyor-run-{run_id}"
        )
        launch.thread = thread
        self._launches[run_id] = launch
        thread.start()
        while not launch.reporter.recorded.wait(0.05):  # compiled, locked and recorded
            if not thread.is_alive():
                del self._launches[run_id]
                launch.raise_error()
                raise UsageError("the run ended before it was recorded")
        return run_id

    def _execute(self, launch: _Launch, request: StartRequest) -> None:
        from conveyor.sdk.running import RunHooks, RunRequest, start_run

        def keep(runner: Runner) -> None:
            launch.runner = runner

        run_request = RunRequest(
            params=request.params, only=request.only, force=request.force, run_id=launch.run_id
        )
        hooks = RunHooks(launch.reporter, None, keep, _warn)
        # a project of its own: the run's thread closes its digest cache when it ends
        root = self.project.root
        pipeline = request.pipeline_file or self.project.pipeline_file
        try:
            if request.ref is None:
                start_run(Project(root, pipeline, self.project.state_dir), run_request, hooks)
            else:
                here = Project(root, pipeline, self.project.state_dir)
                _run_at(here, request.ref, run_request, hooks)
        except BaseException as exc:  # handed to the caller's thread by ended()/start()
            launch.error = exc

    def planned_steps(self, run_id: str) -> int | None:
        launch = self._launches.get(run_id)
        return launch.reporter.steps if launch is not None else None

    def ended(self, run_id: str, timeout: float) -> bool:
        launch = self._launches.get(run_id)
        if launch is None or launch.thread is None:  # another process's run
            if self.project.resolve_run(run_id).status.finished:
                return True
            time.sleep(timeout)
            return False
        launch.thread.join(timeout)
        if launch.thread.is_alive():
            return False
        launch.raise_error()
        return True

    def cancel(self, run_id: str) -> None:
        launch = self._launches.get(run_id)
        if launch is not None and launch.runner is not None:
            launch.runner.request_cancel()
            return
        run = self.project.resolve_run(run_id)
        if run.status.finished:
            raise UsageError(f"run {run.id} already {run.status}: there is nothing to cancel")
        holder = self.project.state_dir / "run.lock"
        held = holder.read_text(encoding="utf-8").strip() if holder.exists() else ""
        if run.host != hostname() or run.pid is None or held != f"pid {run.pid}":
            raise UsageError(
                f"run {run.id} runs in another process ({run.who}@{run.host}); stop it there"
            )
        os.kill(run.pid, signal.SIGTERM)  # the CLI's handler cancels its run cleanly

    def log(self, run_id: str, step_id: str, tail: int | None) -> Iterator[str]:
        """The step's log; while the step runs, it is followed until the step ends."""
        from conveyor.sdk.logs import decoded, step_logs

        run = self.project.resolve_run(run_id)
        for log in step_logs(self.project.records.step_runs(run.id), run, step_id):
            yield from decoded(self._follow(run.id, log.step_id, log.path, tail))

    def _follow(self, run_id: str, step_id: str, path: Path, tail: int | None) -> Iterator[bytes]:
        """The file from its last ``tail`` lines to its end, then what the running step
        appends, until its record says it ended."""
        from conveyor.sdk.logs import CHUNK, tail_start

        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise NotFoundError(f"the log of {step_id} ({path}) is gone") from None
        with handle:
            if tail is not None:
                handle.seek(tail_start(handle, tail))
            while True:
                ended = self._ended(run_id, step_id)  # before reading: nothing is missed
                while chunk := handle.read(CHUNK):
                    yield chunk
                if ended:
                    return
                time.sleep(0.2)

    def _ended(self, run_id: str, step_id: str) -> bool:
        if self.project.resolve_run(run_id).status.finished:  # also a run whose process died
            return True
        steps = self.project.records.step_runs(run_id)
        step = next((s for s in steps if s.step_id == step_id), None)
        return step is None or step.status.finished

    def output_bytes(self, run_id: str, output: Mapping[str, Any]) -> bytes:
        if output.get("kind") == "tree":
            raise UsageError(f"{output['path']} is a directory: its local_path() is one")
        return self.project.store.read_bytes(str(output["digest"]))

    def output_path(self, run_id: str, output: Mapping[str, Any]) -> Path:
        """A read-only copy named like the output: hard links into the store, checked
        against the digest when made."""
        place = cache_place(self.project.state_dir / OUTPUTS_CACHE, output)
        if not place.exists():
            digest = str(output["digest"])
            if output.get("kind") == "tree":
                self.project.store.checkout_tree(digest, place, "link", verify=True)
            else:
                self.project.store.checkout_file(digest, place, "link", verify=True)
        return place

    def fetch(self, run_id: str, destination: Path) -> int:
        from conveyor.sdk.maintenance import fetch_outputs

        return fetch_outputs(self.project, run_id, destination).files

    def lineage(self, target: str) -> dict[str, Any]:
        from conveyor.sdk.inspect import lineage

        return lineage(self.project, target)

    def tracking(self, run_ids: Sequence[str]) -> dict[str, Any]:
        from conveyor.sdk.tracking import compare, read_tracking

        runs = [self.project.resolve_run(ref) for ref in run_ids]
        if len(runs) == 1:
            return read_tracking(self.project, runs[0]).to_json()
        return compare(self.project, runs).to_json()

    def upstream(self, run_id: str) -> dict[str, list[str]]:
        """From the plan of a run started here; else from the records: the steps whose
        outputs a step read, and those it was keyed on (a step without inputs)."""
        launch = self._launches.get(run_id)
        if launch is not None and launch.reporter.needs:
            return launch.reporter.needs
        records = self.project.records
        steps = records.step_runs(self.project.resolve_run(run_id).id)
        made = {(o.path, o.digest): s.step_id for s in steps for o in s.outputs}
        found = {}
        for step in steps:
            read = records.inputs_of(step.cached_from or step.run_id, step.step_id)
            ups = {made[i.path, i.digest] for i in read if (i.path, i.digest) in made}
            ups |= set(step.parts.get("upstream", {}))
            found[step.step_id] = sorted(ups - {step.step_id})
        return found

    def close(self) -> None:
        for launch in self._launches.values():
            if launch.thread is not None and launch.thread.is_alive() and launch.runner:
                launch.runner.request_cancel()
        for launch in self._launches.values():
            if launch.thread is not None:
                launch.thread.join()


def _warn(message: str) -> None:
    """What the loader accepted but ignored, as the CLI's ``warning:`` lines are: a
    Python warning (shown once in a notebook, filtered as the caller's filters say)."""
    import warnings

    warnings.warn(message, UserWarning, stacklevel=1)


def _run_at(project: Project, ref: str, request: Any, hooks: Any) -> None:
    """A run of the pipeline as committed at ``ref``, in a temporary worktree; its
    records and store are the project's."""
    import shutil
    import tempfile

    from conveyor.sdk.running import start_run
    from conveyor.vcs.git import add_worktree, check_revision, git_state, remove_worktree, resolve

    commit = resolve(project.root, check_revision(ref))
    if commit is None:
        raise NotFoundError(f"{ref!r} names no branch, tag or commit of this repository")
    top = git_state(project.root).toplevel
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-ref-"))
    tree = tmp / "tree"
    add_worktree(top, commit, tree)
    try:
        inside = tree / project.root.relative_to(top)
        used = inside / project.pipeline_file.relative_to(project.root)
        start_run(Project(inside, used, state_dir=project.state_dir), request, hooks)
    finally:
        remove_worktree(top, tree)
        shutil.rmtree(tmp, ignore_errors=True)
