"""Where the pages read runs from: a server's state (``ServerSource``: its queue, its
records, its repositories and secrets) or one project's own records and store
(``LocalSource`` in ``local.py``, for ``conveyor ui``). The pages, templates and
checks are the same code; only these reads differ."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from conveyor.domain.states import RunStatus
from conveyor.metadata.records import StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.server.auth import Access
from conveyor.server.db.queue import QueuedRun
from conveyor.server.masking import Masker
from conveyor.server.state import ServerState
from conveyor.server.web.views import RunPlan

if TYPE_CHECKING:
    from conveyor.sdk.datasets.service import Datasets
    from conveyor.store.cas import ContentStore

RunsPage = tuple[list[QueuedRun], int, str | None]


@dataclass(frozen=True)
class RunFilters:
    """The runs list's filters (equality; blank: any)."""

    status: RunStatus | None = None
    branch: str = ""
    trigger: str = ""
    pipeline: str = ""


class RunSource(Protocol):
    local: bool
    """``conveyor ui``: one project, no sign-in, read-only."""
    filters: tuple[str, ...]
    """The filters of the runs list this source can apply."""

    @property
    def records(self) -> MetadataRepository: ...

    def open_access(self, project: str, needed: str) -> Access | None:
        """The access that needs no sign-in (``conveyor ui``), else None."""
        ...

    @property
    def store(self) -> ContentStore: ...

    def owns(self, project: str, run_id: str) -> bool:
        """Whether the run is one of the project's (lineage crosses runs: only these)."""
        ...

    def repo(self, project: str) -> Path:
        """The git repository of the project's commits."""
        ...

    def datasets(self, project: str) -> Datasets:
        """The project's datasets."""
        ...

    def worker_notice(self, project: str) -> str | None:
        """The line telling that the project's Pachyderm triggers wait for a ``conveyor
        worker`` none of which asks for work; None when nothing waits so."""
        ...

    def page(self, project: str, limit: int, filters: RunFilters, after: str | None) -> RunsPage:
        """Runs newest first after the run ``after`` (422 for an unknown one)."""
        ...

    def get_run(self, project: str, run_id: str) -> QueuedRun: ...

    def run_plan(self, run: QueuedRun) -> RunPlan: ...

    def commit_url(self, run: QueuedRun) -> str | None:
        """The run's commit on its forge's web pages, when known."""
        ...

    def run_files(
        self, run: QueuedRun, records: list[StepRunRecord] | None = None
    ) -> list[dict[str, Any]]:
        """The run's output files; from ``records`` when the caller has read the run's
        step runs already (a 1,000-step run's take tens of milliseconds to read)."""
        ...

    def artifact(self, project: str, run_id: str, path: str) -> tuple[Path, str, Masker]:
        """The stored file, its normalised path and the masker of what shows it."""
        ...

    def public_text(self, text: str | None) -> str | None: ...

    async def log(self, run: QueuedRun, step_id: str, tail: int | None) -> StreamingResponse: ...


def source(request: Request) -> RunSource:
    found: RunSource = request.app.state.web_source
    return found


def download(src: RunSource, project: str, run_id: str, path: str) -> Response:
    from conveyor.server.api_runs import artifact_response

    return artifact_response(*src.artifact(project, run_id, path))


STALE_PAGE = "this page of runs does not exist any more; start again"


class ServerSource:
    """The server's state, read with the API's own functions."""

    local = False
    filters = ("status", "branch", "trigger", "pipeline")

    def __init__(self, state: ServerState) -> None:
        from conveyor.server.web.plans import PlanCache

        self.state = state
        self.plans = PlanCache()

    @property
    def records(self) -> MetadataRepository:
        return self.state.db.records

    def open_access(self, project: str, needed: str) -> Access | None:
        return None  # every caller signs in

    @property
    def store(self) -> ContentStore:

        return self.state.config.open_store()

    def owns(self, project: str, run_id: str) -> bool:
        run = self.state.db.queue.get(run_id)
        return run is not None and run.project == project

    def repo(self, project: str) -> Path:
        return self.state.config.repo_dir(project)

    def datasets(self, project: str) -> Datasets:
        from conveyor.server.api_datasets import datasets_of

        return datasets_of(self.state, project)

    def worker_notice(self, project: str) -> str | None:
        from conveyor.server.pachyderm_notice import worker_notice

        return worker_notice(self.state, project)[1]

    def page(self, project: str, limit: int, filters: RunFilters, after: str | None) -> RunsPage:
        ref = f"refs/heads/{filters.branch}" if filters.branch else None
        queue = self.state.db.queue
        found = queue.page(
            project,
            limit,
            filters.status,
            after,
            ref,
            filters.trigger or None,
            filters.pipeline or None,
        )
        if found is None:
            raise HTTPException(422, STALE_PAGE)
        return found

    def get_run(self, project: str, run_id: str) -> QueuedRun:
        from conveyor.server.api_runs import get_run

        return get_run(self.state, project, run_id)

    def run_plan(self, run: QueuedRun) -> RunPlan:
        from conveyor.sdk.listing import TreeFiles
        from conveyor.server.triggers import load_spec_at
        from conveyor.server.web.views import run_plan

        def load() -> Any:
            return load_spec_at(self.state, run.project, run.commit)

        def compile_() -> RunPlan:
            files = TreeFiles(self.state.config.repo_dir(run.project), run.commit)
            return run_plan(load, run, f"at {run.commit[:12]}", files)

        # the trigger's facts are the plan's event payload (event.*) as the parameters are
        shape = {"params": dict(run.params), "event": [run.ref, run.trigger, run.who]}
        return self.plans.get((run.project, run.commit, shape), compile_)

    def commit_url(self, run: QueuedRun) -> str | None:
        from conveyor.server.forge import commit_url

        found = self.state.statuses.link_of(run.id)  # a forge's webhook started the run
        return commit_url(found[1]) if found is not None and found[0] == run.project else None

    def run_files(
        self, run: QueuedRun, records: list[StepRunRecord] | None = None
    ) -> list[dict[str, Any]]:
        from conveyor.server.api_runs import output_files

        found = self.records.step_runs(run.id) if records is None else records
        return output_files(self.store, found)

    def artifact(self, project: str, run_id: str, path: str) -> tuple[Path, str, Masker]:
        from conveyor.server.api_runs import output_path, stored_output

        norm = output_path(path)
        run = self.get_run(project, run_id)
        store = self.state.config.open_store()
        stored = stored_output(store, self.records.step_runs(run.id), run.id, norm)
        return stored, norm, Masker(self.state.secrets_for(project).values())

    def public_text(self, text: str | None) -> str | None:
        from conveyor.server.api_runs import public_text

        return public_text(self.state, text)

    async def log(self, run: QueuedRun, step_id: str, tail: int | None) -> StreamingResponse:
        from conveyor.server.logstream import log_response

        return await log_response(self.state, run, step_id, True, tail, None)
