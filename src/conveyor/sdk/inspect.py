"""Reading what happened: run summaries, why a step hit or missed, lineage."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.domain.jsonshape import JsonShape, shape
from conveyor.errors import NotFoundError, StoreError
from conveyor.metadata.records import OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.plan.fingerprint import explain_change
from conveyor.sdk.project import Project

if TYPE_CHECKING:
    from conveyor.store.cas import ContentStore


def run_json(project: Project, run: RunRecord, with_steps: bool = True) -> dict[str, Any]:
    """``conveyor show --json``: :func:`record_json` over the project's records."""
    return record_json(project.records, run, with_steps)


def record_json(
    records: MetadataRepository, run: RunRecord, with_steps: bool = True
) -> dict[str, Any]:
    """A run's JSON, one shape for ``show --json`` and the server's run API: its record
    (``number`` among it), its step runs (:func:`steps_json`) and the dataset commits
    it checked out (``datasets``)."""
    data = run.to_json()
    if with_steps:
        data["steps"] = steps_json(records, run.id)
        data["datasets"] = [r.to_json() for r in records.dataset_reads(run.id)]
    return data


def steps_json(records: MetadataRepository, run_id: str) -> list[dict[str, Any]]:
    """A run's step runs in the order they started (never started ones last), each with its
    :func:`step_extras` (``executor``, ``ran_on``...)."""
    steps = records.step_runs(run_id)
    data = [s.to_json() for s in sorted(steps, key=_plan_order(steps))]
    provenance = step_extras(records, run_id)
    for step in data:
        step.update(provenance.get(step["id"], {}))
    return data


_NEVER = float("inf")
_EXTRAS = ("executor", "image", "container", "image_id", "action", "action_commit")


def step_extras(records: MetadataRepository, run_id: str) -> dict[str, dict[str, Any]]:
    """What a step's last attempt recorded beyond the usual: its executor (a ``runs-on``
    job's may differ from the run's), the image asked for and where it ran instead, the
    action and the commit it was pinned to; where the executor ran it (``ran_on``: an
    HTCondor job's id and slot)."""
    extras: dict[str, dict[str, Any]] = {}
    for event in records.events(run_id):
        if not event.step_id:
            continue
        if event.kind == "step-started":
            extras[event.step_id] = {k: event.data[k] for k in _EXTRAS if k in event.data}
        elif event.kind == "step-finished" and event.data.get("ran_on"):
            extras.setdefault(event.step_id, {})["ran_on"] = event.data["ran_on"]
    return extras


def ran_on_text(ran_on: object) -> str:
    """``job 12.0, slot slot1@host, host host``: a step's ``ran_on`` for a person."""
    if isinstance(ran_on, dict):
        return ", ".join(f"{key} {value}" for key, value in ran_on.items())
    return str(ran_on or "")


def _plan_order(steps: list[StepRunRecord]) -> Any:
    """Steps in the order they started (or ended: a skip); never started ones last."""

    def key(step: StepRunRecord) -> tuple[float, str]:
        return (step.started_at or step.ended_at or _NEVER, step.step_id)

    return key


@dataclass(frozen=True)
class Explanation(JsonShape):
    step_id: str = field(metadata=shape(key="step"))
    run_id: str = field(metadata=shape(key="run"))
    verdict: str
    reasons: list[str]


_MISS_TEXT = {
    "forced": "the run was forced (--force or a rerun): the cache was not consulted",
    "cache-disabled": "the step says cache: false",
    "outputs-gone": "an earlier run had this fingerprint, but its outputs are gone from the store",
    "outputs-differ": "an earlier run had this fingerprint, but its cache entry does not hold "
    "exactly the step's declared outputs",
}


def why(project: Project, step_ref: str, run_ref: str = "latest") -> Explanation:
    """Why ``step_ref`` was a cache hit or miss in a run: which fingerprint part changed."""
    return explain(project.records, project.resolve_run(run_ref), step_ref)


def explain(records: MetadataRepository, run: RunRecord, step_ref: str) -> Explanation:
    """``why`` for a run already found (the server's pages give their own records)."""
    step = _find_step(records.step_runs(run.id), step_ref)
    if step.cached:
        fingerprint = (step.fingerprint or "")[:12]
        reason = (
            f"same fingerprint {fingerprint} as in run {step.cached_from}; outputs from the store"
        )
        return Explanation(step.step_id, run.id, "hit", [reason])
    if step.fingerprint is None:
        return Explanation(
            step.step_id, run.id, str(step.status), [step.error or "the step did not run"]
        )
    miss = next(
        (
            str(e.data.get("cache_miss"))
            for e in records.events(run.id)
            if e.step_id == step.step_id and e.kind == "step-started"
        ),
        "new-fingerprint",
    )
    if miss in _MISS_TEXT:
        return Explanation(step.step_id, run.id, "miss", [_MISS_TEXT[miss]])
    earlier = [
        h
        for h in records.step_history(step.step_id, limit=50)
        if h.run_id != run.id and h.parts and (h.started_at or 0) <= (step.started_at or 0)
    ]
    if not earlier:
        return Explanation(
            step.step_id, run.id, "miss", ["no earlier run of this step is recorded"]
        )
    previous = earlier[0]
    reasons = explain_change(previous.parts, step.parts) or ["the fingerprint differs"]
    return Explanation(
        step.step_id, run.id, "miss", [f"since run {previous.run_id}: {r}" for r in reasons]
    )


def _find_step(steps: list[StepRunRecord], ref: str) -> StepRunRecord:
    exact = [s for s in steps if s.step_id == ref]
    if exact:
        return exact[0]
    loose = [s for s in steps if s.step_id.endswith("." + ref) or s.job == ref]
    if len(loose) == 1:
        return loose[0]
    if not loose:
        raise NotFoundError(f"the run has no step {ref!r} (steps look like job.step)")
    raise NotFoundError(f"{ref!r} names several steps: {', '.join(s.step_id for s in loose[:5])}")


def lineage(project: Project, target: str) -> dict[str, Any]:
    """Which step run produced a file or digest, from what, and what read it.

    A file inside a directory output is traced to the step run whose directory held it;
    for a directory output, "read by" names the steps that read files inside it."""
    return trace(project.records, project.store, *_target_digest(project, target))


def trace(
    records: MetadataRepository, store: ContentStore, digest: str, path: str | None
) -> dict[str, Any]:
    """``lineage`` of a known digest (and the path it was asked by): the CLI's, the
    web page's lineage graph (one call per artifact)."""
    producers = records.producers(digest)
    if not producers and path is not None:
        producers = [
            (r, s, o) for r, s, o, d in _enclosing_outputs(records, store, path) if d == digest
        ]
    if not producers:
        where = f"{path} ({digest[:12]})" if path else digest[:12]
        raise NotFoundError(f"no run produced {where}; only declared outputs have lineage")
    produced_by = []
    for run_id, step_id, output in producers:
        run = records.get_run(run_id)
        inputs = records.inputs_of(run_id, step_id)
        step = next((s for s in records.step_runs(run_id) if s.step_id == step_id), None)
        extras = step_extras(records, run_id).get(step_id, {})
        produced_by.append(
            {
                "run": run_id,
                "step": step_id,
                "path": output.path,
                "commit": run.commit if run else None,
                "dirty": run.dirty if run else None,
                "params": run.params if run else {},
                "command": step.command if step else None,
                "fingerprint": step.fingerprint if step else None,
                "ended_at": step.to_json()["ended_at"] if step else None,
                "inputs": [{"path": i.path, "digest": i.digest} for i in inputs],
                "datasets": dataset_sources(records, run_id, [i.path for i in inputs]),
                "upstream": (step.parts.get("upstream", {}) if step else {}),
                "executor": extras.get("executor"),
                "ran_on": extras.get("ran_on"),
            }
        )
    consumed_by = [
        {"run": run_id, "step": step_id, "path": item.path}
        for run_id, step_id, item in records.consumers(digest)
    ]
    tree = next((o for _, _, o in producers if o.kind == "tree" and o.digest == digest), None)
    if tree is not None:
        consumed_by += _readers_inside(records, store, tree)
    return {"digest": digest, "path": path, "produced_by": produced_by, "consumed_by": consumed_by}


def dataset_sources(
    records: MetadataRepository, run_id: str, paths: list[str]
) -> list[dict[str, Any]]:
    """The dataset commits a step's inputs came from: the run's checkouts (its
    ``datasets:``) that hold one of ``paths``, with the inputs read from each."""
    sources = []
    for read in records.dataset_reads(run_id):
        inside = [p for p in paths if p == read.path or p.startswith(read.path + "/")]
        if inside:
            sources.append({**read.to_json(), "inputs": inside})
    return sources


def _readers_inside(
    records: MetadataRepository, store: ContentStore, tree: OutputRecord
) -> list[dict[str, Any]]:
    """Step runs that read a file of a directory output (inputs are kept per file)."""
    try:
        entries = store.read_tree(tree.digest)
    except StoreError:
        return []
    wanted = {f"{tree.path}/{e.path}": e.digest for e in entries}
    readers = []
    for digest in sorted(set(wanted.values())):
        for run_id, step_id, item in records.consumers(digest):
            if wanted.get(item.path) == digest:
                readers.append({"run": run_id, "step": step_id, "path": item.path})
    return readers


def _enclosing_outputs(
    records: MetadataRepository, store: ContentStore, rel: str
) -> list[tuple[str, str, OutputRecord, str]]:
    """Directory outputs that held the file ``rel``, newest run first: (run, step,
    output, the file's digest in that output)."""
    found = []
    trees: dict[str, dict[str, str]] = {}  # tree digest -> its files' digests
    parent = posixpath.dirname(rel)
    while parent and parent not in (".", ".."):
        inner = rel[len(parent) + 1 :]
        for run_id, step_id, output in records.outputs_at_path(parent):
            if output.kind != "tree":
                continue
            if output.digest not in trees:
                try:
                    entries = store.read_tree(output.digest)
                except StoreError:
                    entries = []
                trees[output.digest] = {e.path: e.digest for e in entries}
            digest = trees[output.digest].get(inner)
            if digest is not None:
                found.append((run_id, step_id, output, digest))
        parent = posixpath.dirname(parent)
    return found


def _target_digest(project: Project, target: str) -> tuple[str, str | None]:
    candidate = Path(target)
    full = candidate if candidate.is_absolute() else Path.cwd() / candidate
    rel = os.path.relpath(full, project.root)
    if full.is_file():
        return project.digests.digest(full), rel
    known = project.records.outputs_at_path(rel)
    if known:
        return known[0][2].digest, rel
    enclosing = _enclosing_outputs(
        project.records, project.store, rel
    )  # a file of a directory output, since gone
    if enclosing:
        return enclosing[0][3], rel
    if len(target) >= 8 and all(c in "0123456789abcdef" for c in target):
        digests = [d for d in project.records.referenced_digests() if d.startswith(target)]
        if len(digests) == 1:
            return digests[0], None
        if len(digests) > 1:
            raise NotFoundError(f"{target!r} matches several digests; give more characters")
    raise NotFoundError(f"{target!r} is neither a file, a recorded output path nor a known digest")
