"""What the pages show, read through their ``RunSource``: plain dicts for the templates
(the values are data; Jinja2 escapes every one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.metadata.records import StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.server.db.queue import QueuedRun
from conveyor.server.web.dag import Drawing, layout

if TYPE_CHECKING:
    from conveyor.spec.model import PipelineSpec

TRIGGERS = ("push", "tag", "webhook", "schedule", "manual")


def branch_of(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def duration(start: float | None, end: float | None) -> str:
    """``1m 05s``; a running thing counts to now; blank when it never started."""
    if start is None:
        return ""
    seconds = int((end if end is not None else time.time()) - start)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) if stamp else ""


def commits_of(repo: Path, runs: list[QueuedRun]) -> dict[str, Any]:
    """Author and subject of the runs' commits (one git process for the page)."""
    from conveyor.vcs.git import commit_summaries

    found = commit_summaries(repo, [r.commit for r in runs])
    return {c: {"author": a, "subject": s} for c, (a, s) in found.items()}


def run_rows(
    records: MetadataRepository, repo: Path, runs: list[QueuedRun]
) -> list[dict[str, Any]]:
    """The lines of the runs list: one grouped query for the step counts, one git
    process for the commits."""
    counts = records.step_counts(r.id for r in runs)
    commits = commits_of(repo, runs)
    return [run_row(r, counts.get(r.id, (0, 0)), commits) for r in runs]


def run_row(run: QueuedRun, counts: tuple[int, int], commits: dict[str, Any]) -> dict[str, Any]:
    """One line of the runs list: with its counts of steps served from cache and run."""
    cached, ran = counts
    return {
        "id": run.id,
        "status": str(run.status),
        "branch": branch_of(run.ref),
        "commit": run.commit[:12],
        "subject": commits.get(run.commit, {}).get("subject", ""),
        "author": commits.get(run.commit, {}).get("author", ""),
        "trigger": run.trigger,
        "who": run.who,
        "created": when(run.created_at),
        "duration": duration(run.started_at, run.ended_at),
        "cached": cached,
        "ran": ran,
    }


@dataclass(frozen=True)
class StepLine:
    id: str
    name: str
    job: str
    status: str
    cached: bool
    exit_code: int | None
    attempts: int
    duration: str


def step_status(record: StepRunRecord | None, run: QueuedRun) -> str:
    if record is not None:
        return str(record.status)
    return "not-run" if run.status.finished else "pending"


def step_lines(run: QueuedRun, plan: RunPlan, records: list[StepRunRecord]) -> list[StepLine]:
    """Every step of the plan (in plan order), with its record where it has one; steps
    recorded but not in the plan (the plan failed to compile) after them."""
    by_id = {r.step_id: r for r in records}
    planned = set(plan.steps)
    order = plan.steps + [r.step_id for r in records if r.step_id not in planned]
    lines = []
    for step_id in order:
        record = by_id.get(step_id)
        lines.append(
            StepLine(
                id=step_id,
                name=plan.names.get(step_id, ""),
                job=record.job if record else step_id.partition(".")[0],
                status=step_status(record, run),
                cached=bool(record and record.cached),
                exit_code=record.exit_code if record else None,
                attempts=record.attempt if record else 0,
                duration=duration(record.started_at, record.ended_at) if record else "",
            )
        )
    return lines


@dataclass(frozen=True)
class RunPlan:
    steps: list[str]
    needs: dict[str, set[str]]
    names: dict[str, str]
    error: str | None = None


def run_plan(load: Callable[[], PipelineSpec], run: QueuedRun, where: str) -> RunPlan:
    """The steps, dependencies and names of the pipeline ``load`` reads (``where``: at
    the run's commit, or as it is now) with the run's parameters, or an empty plan and
    the reason."""
    from conveyor.errors import ConveyorError
    from conveyor.plan.compile import compile_plan

    try:
        plan = compile_plan(load(), dict(run.params), [])
    except ConveyorError as exc:
        return RunPlan([], {}, {}, f"the pipeline {where} does not compile: {exc}")
    needs = {s.id: set(s.needs) for s in plan.steps}
    for consumer, producer, _path in plan.inferred:
        needs.setdefault(consumer, set()).add(producer)
    # a name the user gave (the compiler names a step after its id otherwise)
    names = {s.id: s.name for s in plan.steps if s.name and s.name != s.id.partition(".")[2]}
    return RunPlan([s.id for s in plan.steps], needs, names)


@dataclass(frozen=True)
class Graph:
    drawing: Drawing
    by_job: bool
    """Nodes are jobs (the run has too many steps to draw one by one)."""
    sizes: dict[str, int]
    """Steps per node (1 for a step)."""


def job_of(step_id: str) -> str:
    return step_id.partition(".")[0]


def graph(plan: RunPlan) -> Graph | None:
    """The steps and their dependencies; a run with too many steps is drawn by job (a
    job depends on another when one of its steps does); None when even that is too big."""
    drawn = layout(plan.steps, plan.needs)
    if drawn is not None:
        return Graph(drawn, False, dict.fromkeys(plan.steps, 1))
    jobs: dict[str, int] = {}
    for step in plan.steps:
        jobs[job_of(step)] = jobs.get(job_of(step), 0) + 1
    needs: dict[str, set[str]] = {}
    for step, wanted in plan.needs.items():
        for other in wanted:
            if job_of(other) != job_of(step):
                needs.setdefault(job_of(step), set()).add(job_of(other))
    drawn = layout(list(jobs), needs)
    return None if drawn is None else Graph(drawn, True, jobs)


def job_status(statuses: list[str]) -> str:
    """One status for a job's steps: a failure shows first, then work under way."""
    for status in ("failed", "interrupted", "running", "cancelled"):
        if status in statuses:
            return status
    done = [s for s in statuses if s in ("succeeded", "skipped")]
    waiting = [s for s in statuses if s in ("pending", "queued")]
    if statuses and len(done) == len(statuses):
        return "succeeded" if "succeeded" in done else "skipped"
    if done and waiting:
        return "running"
    return "pending" if waiting else "not-run"


def job_statuses(statuses: dict[str, str]) -> dict[str, str]:
    return {job: status for job, (status, _count) in job_states(statuses).items()}


def job_states(statuses: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Each job's status and how many of its steps ``statuses`` holds."""
    grouped: dict[str, list[str]] = {}
    for step, status in statuses.items():
        grouped.setdefault(job_of(step), []).append(status)
    return {job: (job_status(values), len(values)) for job, values in grouped.items()}


def live_state(records: MetadataRepository, run: QueuedRun) -> bytes:
    """The small JSON the run page polls: the run's status and each recorded step's."""
    states = records.step_states(run.id)
    steps = {
        r.step_id: {
            "status": str(r.status),
            "cached": r.cached,
            "exit_code": r.exit_code,
            "attempts": r.attempt,
            "duration": duration(r.started_at, r.ended_at),
            # epoch seconds: the live timeline draws the bars of the steps that ran
            "started": r.started_at,
            "ended": r.ended_at,
        }
        for r in states
    }
    data: dict[str, Any] = {
        "status": str(run.status),
        "final": run.status.finished,
        # of the recorded steps only: the page knows each job's size
        "jobs": job_states({r.step_id: str(r.status) for r in states}),
        "duration": duration(run.started_at, run.ended_at),
        "now": time.time(),  # a running step's bar reaches the server's now
        "steps": steps,
    }
    return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Bar:
    step_id: str
    status: str
    start: float
    """Seconds after the first step started."""
    length: float
    label: str


MAX_BARS = 200  # a timeline taller than this says little; the table has every step


def timeline(records: list[StepRunRecord]) -> tuple[list[Bar], float]:
    """The steps that ran (not cache hits), in start order, as bars from the first
    start; a step still running reaches now. And the span in seconds."""
    ran = sorted(
        (r for r in records if r.started_at is not None and not r.cached),
        key=lambda r: (r.started_at or 0.0, r.step_id),
    )
    if not ran or len(ran) > MAX_BARS:
        return [], 0.0
    origin = ran[0].started_at or 0.0
    now = time.time()
    bars = []
    for record in ran:
        start = (record.started_at or origin) - origin
        end = (record.ended_at if record.ended_at is not None else now) - origin
        label = f"{record.step_id}: {duration(record.started_at, record.ended_at)}"
        bars.append(Bar(record.step_id, str(record.status), start, max(end - start, 0.0), label))
    span = max([1.0, *(b.start + b.length for b in bars)])
    return bars, span
