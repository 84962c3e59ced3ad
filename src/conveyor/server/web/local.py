"""The pages' source for ``conveyor ui`` (``ui.py``): one project's own records and
store (the stdlib SQLite repository, no server database, no sign-in, read-only).

The caller is the person at this machine, who can read the records and the store
anyway: the pages give them the viewer's role (no cancel or re-run), and the app
listens on the loopback interface unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from conveyor.domain.runrefs import run_number
from conveyor.metadata.records import RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.project import Project
from conveyor.server.auth import Access
from conveyor.server.db.accounts import User, role_at_least
from conveyor.server.db.queue import QueuedRun
from conveyor.server.masking import Masker
from conveyor.server.web.source import STALE_PAGE, RunFilters, RunsPage
from conveyor.server.web.views import RunPlan
from conveyor.store.cas import ContentStore

LOCAL_USER = User(0, "you", False)
LOCAL_ROLE = "viewer"  # read-only: the page never changes the records
MAX_RUN_REF = 64


class LocalSource:
    """One project's records and store, as the CLI opens them."""

    local = True
    filters = ("status", "trigger", "pipeline")

    def __init__(self, project: Project, name: str) -> None:
        self.project = project
        self.name = name

    @property
    def records(self) -> MetadataRepository:
        return self.project.records

    def open_access(self, project: str, needed: str) -> Access:
        """The caller's access: the viewer's role on this one project."""
        if project != self.name:
            raise HTTPException(404, f"there is no project {project!r} here")
        if not role_at_least(LOCAL_ROLE, needed):
            raise HTTPException(403, "conveyor ui is read-only: use the CLI to change runs")
        return Access(LOCAL_USER, project, LOCAL_ROLE)

    @property
    def store(self) -> ContentStore:
        return self.project.store

    def owns(self, project: str, run_id: str) -> bool:
        return project == self.name  # the records hold this project's runs only

    def repo(self, project: str) -> Path:
        return self.project.root

    def datasets(self, project: str) -> Datasets:
        self.open_access(project, LOCAL_ROLE)
        return Datasets(self.project)

    def worker_notice(self, project: str) -> str | None:
        return None  # a laptop runs its own jobs: no worker to wait for

    def page(self, project: str, limit: int, filters: RunFilters, after: str | None) -> RunsPage:
        found = self.records.page_runs(
            limit, after, filters.status, filters.pipeline or None, filters.trigger or None
        )
        if found is None:
            raise HTTPException(422, STALE_PAGE)
        runs, total, next_after = found
        return [self._row(r) for r in runs], total, next_after

    def get_run(self, project: str, run_id: str) -> QueuedRun:
        """A run by id, a unique prefix of one, its number (``#12``, or ``12`` under 4
        digits, as the CLI names it) or ``latest`` (read only: interrupted runs are left
        for the CLI to recover)."""
        self.open_access(project, LOCAL_ROLE)
        ref = run_id[:MAX_RUN_REF]
        number = run_number(ref)  # a bad ``#x`` is a UsageError: the page's 400
        if number is not None:
            found = self.records.runs_numbered(number)[:1]  # the project's own scope only
        elif ref == "latest":
            found = self.records.list_runs(1)
        else:
            exact = self.records.get_run(ref)
            found = [exact] if exact is not None else self.records.find_runs(ref)
        if len(found) > 1:
            ids = ", ".join(r.id for r in found[:5])
            raise HTTPException(409, f"{ref!r} matches several runs ({ids}); give more")
        if not found:
            raise HTTPException(404, f"project {project!r} has no run {ref!r}")
        return self._row(found[0])

    def _row(self, record: RunRecord) -> QueuedRun:
        """A run's record in the shape the pages show (a local run has no ref or queue)."""
        return QueuedRun(
            id=record.id,
            project=self.name,
            status=record.status,
            ref="",
            commit=record.commit or "",
            trigger=record.trigger,
            who=record.who,
            params=dict(record.params),
            created_at=record.created_at,
            started_at=record.started_at,
            ended_at=record.ended_at,
            worker=record.host or None,
            cancel_requested=False,
            error=record.error,
            result_commit=None,
        )

    def run_plan(self, run: QueuedRun) -> RunPlan:
        from conveyor.sdk.listing import ProjectFiles
        from conveyor.server.web.views import run_plan

        files = ProjectFiles(self.project.root)
        return run_plan(self.project.load_spec, run, "as it is now", files)

    def commit_url(self, run: QueuedRun) -> str | None:
        return None  # a laptop's run has no forge page the records know of

    def run_files(
        self, run: QueuedRun, records: list[StepRunRecord] | None = None
    ) -> list[dict[str, Any]]:
        from conveyor.server.api_runs import output_files

        found = self.records.step_runs(run.id) if records is None else records
        return output_files(self.project.store, found)

    def artifact(self, project: str, run_id: str, path: str) -> tuple[Path, str, Masker]:
        from conveyor.server.api_runs import output_path, stored_output

        norm = output_path(path)
        run = self.get_run(project, run_id)
        stored = stored_output(self.project.store, self.records.step_runs(run.id), run.id, norm)
        return stored, norm, Masker(())  # this machine's own files: nothing to hide from it

    def public_text(self, text: str | None) -> str | None:
        return text

    async def log(self, run: QueuedRun, step_id: str, tail: int | None) -> StreamingResponse:
        from conveyor.server.logstream import stream_log

        def find() -> tuple[Path | None, bool, bool]:
            for step in self.records.step_runs(run.id):
                if step.step_id == step_id:
                    finished = step.status.finished or run.status.finished
                    return (Path(step.log_path) if step.log_path else None), finished, True
            current = self.records.get_run(run.id)
            return None, current is None or current.status.finished, True

        missing = f"run {run.id} has no log for step {step_id[:200]!r}"
        return await stream_log(find, Masker(()), True, tail, missing)
