"""What the pages show, read through their ``RunSource``: plain dicts for the templates
(the values are data; Jinja2 escapes every one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.metadata.records import EventRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.inspect import ran_on_text
from conveyor.server.db.queue import QueuedRun
from conveyor.server.web.dag import Drawing, layout

if TYPE_CHECKING:
    from conveyor.plan.datums import Lister
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


def run_plan(
    load: Callable[[], PipelineSpec], run: QueuedRun, where: str, lister: Lister
) -> RunPlan:
    """The steps, dependencies and names of the pipeline ``load`` reads (``where``: at
    the run's commit, or as it is now) with the run's parameters and the files
    ``lister`` names (what ``datums`` globs match), or an empty plan and the reason."""
    from conveyor.domain.conditions import TriggerContext, pipeline_values
    from conveyor.errors import ConveyorError
    from conveyor.plan.compile import compile_plan
    from conveyor.sdk.runfacts import server_payload

    try:
        spec = load()
        event = server_payload(run.ref, run.commit, run.trigger, run.who, run.project)
        trigger = TriggerContext(event, pipeline_values(spec.source.path, run.project))
        plan = compile_plan(spec, dict(run.params), [], lister, trigger)
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
    grouped: bool = False
    """Matrix and datum fan-outs are one node each (``fanout_of``), with their count."""


def job_of(step_id: str) -> str:
    return step_id.partition(".")[0]


def fanout_of(step_id: str) -> str:
    """The step a matrix instance (``job[k=v].step``) or a datum (``job.step[datum]``)
    was made from: the id without its bracketed parts (nested brackets included)."""
    if "[" not in step_id:
        return step_id
    kept: list[str] = []
    depth = 0
    for char in step_id:
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif not depth:
            kept.append(char)
    return "".join(kept)


def graph(plan: RunPlan) -> Graph | None:
    """The steps and their dependencies, a matrix's or a datum glob's fan-out drawn as one
    node with its count; a run with too many nodes is drawn by job (a job depends on
    another when one of its steps does); None when even that is too big."""
    groups: dict[str, int] = {}
    for step in plan.steps:
        groups[fanout_of(step)] = groups.get(fanout_of(step), 0) + 1
    if len(groups) < len(plan.steps):
        drawn = layout(list(groups), _needs_between(plan.needs, fanout_of))
        if drawn is not None:
            return Graph(drawn, False, groups, grouped=True)
    else:
        drawn = layout(plan.steps, plan.needs)
        if drawn is not None:
            return Graph(drawn, False, dict.fromkeys(plan.steps, 1))
    jobs: dict[str, int] = {}
    for step in plan.steps:
        jobs[job_of(step)] = jobs.get(job_of(step), 0) + 1
    drawn = layout(list(jobs), _needs_between(plan.needs, job_of))
    return None if drawn is None else Graph(drawn, True, jobs)


def _needs_between(
    needs: dict[str, set[str]], node_of: Callable[[str], str]
) -> dict[str, set[str]]:
    """The steps' dependencies as dependencies between the nodes that hold them."""
    between: dict[str, set[str]] = {}
    for step, wanted in needs.items():
        for other in wanted:
            if node_of(other) != node_of(step):
                between.setdefault(node_of(step), set()).add(node_of(other))
    return between


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
    return _states(statuses.items(), job_of)


def group_statuses(statuses: dict[str, str]) -> dict[str, str]:
    return {group: status for group, (status, _count) in group_states(statuses).items()}


def group_states(statuses: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Each fan-out's status and how many of its steps ``statuses`` holds (steps of no
    matrix or datum glob are not groups)."""
    fanned = ((step, status) for step, status in statuses.items() if "[" in step)
    return _states(fanned, fanout_of)


def _states(
    statuses: Iterable[tuple[str, str]], node_of: Callable[[str], str]
) -> dict[str, tuple[str, int]]:
    grouped: dict[str, list[str]] = {}
    for step, status in statuses:
        grouped.setdefault(node_of(step), []).append(status)
    return {node: (job_status(values), len(values)) for node, values in grouped.items()}


def live_state(records: MetadataRepository, run: QueuedRun) -> bytes:
    """The small JSON the run page polls: the run's status and each recorded step's."""
    states = records.step_states(run.id)
    recorded = {r.step_id: str(r.status) for r in states}
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
        "jobs": job_states(recorded),
        "groups": group_states(recorded),  # the fan-outs drawn as one node
        "duration": duration(run.started_at, run.ended_at),
        "now": time.time(),  # a running step's bar reaches the server's now
        "steps": steps,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def where_it_ran(events: Iterable[EventRecord], step_id: str) -> str | None:
    """The executor and its id for the step's last attempt (``step-started``), e.g.
    ``htcondor (htcondor:3f2a/j4)``, and once it ended, where the backend ran it when
    it told (``step-finished``'s ``ran_on``: an HTCondor job and slot, a Spark task and
    its executor and host)."""
    found, ran_on = None, None
    for event in events:
        if event.step_id != step_id:
            continue
        if event.kind == "step-started":
            found, ran_on = event.data, None
        elif event.kind == "step-finished" and found is not None:
            ran_on = event.data.get("ran_on")
    if not found or not found.get("executor"):
        return None
    backend = str(found.get("backend_id") or "")
    text = f"{found['executor']} ({backend})" if backend else str(found["executor"])
    return f"{text}: {ran_on_text(ran_on)}" if ran_on else text


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
