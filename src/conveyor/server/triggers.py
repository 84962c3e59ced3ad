"""From ref updates (a push, a webhook, a schedule) to queued runs.

The pipeline file is read at the pushed commit: its ``on:`` decides whether the ref
starts a run. A pipeline file that cannot be read or is invalid still leaves a trace:
a run record that failed with the loader's message, so the pusher sees why.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.domain.states import RunStatus
from conveyor.errors import ConveyorError, ProjectError
from conveyor.server.db.statuses import ForgeLink
from conveyor.server.state import ServerState
from conveyor.spec.files import PIPELINE_FILES, PYTHON_PIPELINE
from conveyor.spec.model import PipelineSpec
from conveyor.spec.patterns import ref_matches
from conveyor.vcs.git import ZERO, file_size, read_file


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str


def parse_updates(text: str) -> list[RefUpdate]:
    """``old new ref`` lines, as git hands them to a post-receive hook."""
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


def load_spec_at(state: ServerState, project: str, commit: str) -> PipelineSpec:
    from conveyor.spec.files import format_for_name
    from conveyor.spec.formats import parse_text
    from conveyor.spec.load import validate_native
    from conveyor.spec.uses import stub_uses
    from conveyor.spec.yamlsource import check_size, load_documents

    repo = state.config.repo_dir(project)
    for name in (*PIPELINE_FILES, PYTHON_PIPELINE):
        size = file_size(repo, commit, name)
        if size is None:
            continue
        if name == PYTHON_PIPELINE:
            return python_placeholder()
        check_size(size, name)  # a few MB pushed can be gigabytes unpacked
        data = read_file(repo, commit, name)
        if data is not None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProjectError(f"{name} at {commit[:12]} is not UTF-8 text") from exc
            if format_for_name(name) in ("drone", "dotscience"):
                return parse_text(text, name, format_for_name(name))
            # only `on:` is read here: actions (`uses`) are fetched when the run loads
            documents = [(stub_uses(d), s) for d, s in load_documents(text, name)]
            return validate_native(documents, name)
    names = ", ".join((*PIPELINE_FILES, PYTHON_PIPELINE))
    raise NoPipelineFile(f"commit {commit[:12]} has no pipeline file ({names})")


class NoPipelineFile(ProjectError):
    """The pushed commit has none of the pipeline files."""


def python_placeholder() -> PipelineSpec:
    """What the server knows of a ``pipeline.py`` without running it: the default
    triggers (a push to any branch) and no steps. Its code runs only in the worker's
    sandbox, where the run traces it (``sdk/pyflow.py``)."""
    return PipelineSpec.model_construct(name="pipeline", jobs={})


def wanted(spec: PipelineSpec, ref: str) -> bool:
    push = spec.on.push
    if push is None:
        return False
    if ref.startswith("refs/heads/"):
        patterns, name = push.branches, ref.removeprefix("refs/heads/")
    elif ref.startswith("refs/tags/"):
        patterns, name = push.tags, ref.removeprefix("refs/tags/")
    else:
        return False
    return ref_matches(patterns, name)


def queue_updates(
    state: ServerState,
    project: str,
    updates: list[RefUpdate],
    who: str,
    trigger: str,
    forge: ForgeLink | None = None,
) -> list[str]:
    """Queue a run per matching ref update; returns lines for the pusher. ``forge``:
    where the runs a forge's webhook started post their commit status."""
    lines = []
    for update in updates:
        if update.new == ZERO or not update.ref.startswith(("refs/heads/", "refs/tags/")):
            continue
        kind = "tag" if update.ref.startswith("refs/tags/") and trigger == "push" else trigger
        try:
            spec = load_spec_at(state, project, update.new)
        except NoPipelineFile as exc:
            if _pachyderm_ci_on(state, project):  # a repository of specs: the CI flow's own
                lines.append(f"conveyor: {exc}: no run (the project's Pachyderm CI reads it)")
                continue
            _failed_at_once(state, project, update, kind, who, forge, exc, lines)
            continue
        except ConveyorError as exc:
            _failed_at_once(state, project, update, kind, who, forge, exc, lines)
            continue
        if update.ref.startswith("refs/heads/"):
            for cron in sync_schedules(state, project, update.ref, spec):
                lines.append(f"conveyor: ignoring the schedule {cron!r}: not a cron expression")
        if trigger != "schedule" and not wanted(spec, update.ref):
            lines.append(f"conveyor: {update.ref} does not match the pipeline's `on:`; no run")
            continue
        run_id = state.db.queue.enqueue(project, update.ref, update.new, kind, who)
        _owe(state, project, run_id, forge, RunStatus.QUEUED)
        lines.extend(queued_lines(state, project, run_id, update.ref, update.new))
    if lines:
        state.wake.set()
    return lines


def _pachyderm_ci_on(state: ServerState, project: str) -> bool:
    return bool(state.db.accounts.settings(project).get("pachyderm_ci"))


def _failed_at_once(
    state: ServerState,
    project: str,
    update: RefUpdate,
    kind: str,
    who: str,
    forge: ForgeLink | None,
    exc: ConveyorError,
    lines: list[str],
) -> None:
    """A run recorded failed with why: the pushed pipeline cannot be read."""
    run_id = state.db.queue.enqueue(
        project, update.ref, update.new, kind, who, status=RunStatus.FAILED, error=str(exc)
    )
    lines.append(f"conveyor: run {run_id} failed at once: {exc}")
    lines.append(f"conveyor: see it: {run_page(state, project, run_id)}")
    _owe(state, project, run_id, forge, RunStatus.FAILED, str(exc))


def sync_schedules(state: ServerState, project: str, ref: str, spec: PipelineSpec) -> list[str]:
    """The pipeline's ``on: schedule`` entries for this branch replace the previous ones;
    returns the invalid ones."""
    crons = [s.cron for s in spec.on.schedule if f"refs/heads/{s.branch}" == ref]
    return state.db.schedules.replace_from_pipeline(project, ref, crons)


def _owe(
    state: ServerState,
    project: str,
    run_id: str,
    forge: ForgeLink | None,
    status: RunStatus,
    error: str | None = None,
) -> None:
    if forge is not None:
        from conveyor.server.forge import owe

        url = run_page(state, project, run_id)
        owe(state.statuses, project, run_id, forge, status, url, error=error)


def run_page(state: ServerState, project: str, run_id: str) -> str:
    """The run's web page."""
    return f"{state.config.base_url}/ui/p/{project}/runs/{run_id}"


def queued_lines(state: ServerState, project: str, run_id: str, ref: str, commit: str) -> list[str]:
    return [
        f"conveyor: run {run_id} queued for {ref} at {commit[:12]}",
        f"conveyor: watch it: {run_page(state, project, run_id)}",
        f"conveyor: results: git fetch <remote> refs/conveyor/results/{run_id}",
    ]
