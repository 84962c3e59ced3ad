"""A dataset commit's lineage in both directions, across pipelines and runs.

Upstream: the input commits a Pachyderm job made it from (its provenance), and theirs,
a few levels. Downstream: the runs that checked it out (their ``datasets:``) with the
step runs that read its files, and the commits pipeline jobs made from it. Bounded: at
most ``MAX_SCANNED`` commits are read to find those made from it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from conveyor.metadata.repository import DatasetRepository, MetadataRepository

DEPTH = 5  # levels of input commits followed upstream
MAX_UPSTREAM = 100
MAX_SCANNED = 5000  # dataset commits read to find those made from a commit
MAX_RUNS = 50  # runs whose step runs are read for the files they used


def input_commits(provenance: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The (dataset, commit) pairs a commit's provenance names as its job's inputs."""
    inputs = (provenance or {}).get("inputs")
    if not isinstance(inputs, dict):
        return []
    pairs = []
    for value in inputs.values():
        if isinstance(value, dict):
            name, commit = value.get("dataset"), value.get("commit")
            if isinstance(name, str) and isinstance(commit, str):
                pairs.append((name, commit))
    return pairs


def upstream(records: DatasetRepository, dataset: str, commit: str) -> list[dict[str, Any]]:
    """The commits this one was made from, breadth first: each with the commit it fed
    (``into``), the pipeline and job that made that one, and its depth (1: a direct input)."""
    found: list[dict[str, Any]] = []
    seen = {(dataset, commit)}
    todo: deque[tuple[str, str, int]] = deque([(dataset, commit, 0)])
    while todo and len(found) < MAX_UPSTREAM:
        name, at, depth = todo.popleft()
        made = records.dataset_commit(name, at)
        provenance = made.provenance if made else {}
        for source in input_commits(provenance):
            if source in seen or depth + 1 > DEPTH:
                continue
            seen.add(source)
            found.append(
                {
                    "dataset": source[0],
                    "commit": source[1],
                    "into": {"dataset": name, "commit": at},
                    "pipeline": provenance.get("pipeline"),
                    "job": provenance.get("job"),
                    "depth": depth + 1,
                }
            )
            todo.append((*source, depth + 1))
    return found


def made_from(records: DatasetRepository, dataset: str, commit: str) -> list[dict[str, Any]]:
    """The commits pipeline jobs made with this commit among their inputs."""
    made: list[dict[str, Any]] = []
    scanned = 0
    for other in records.list_datasets():
        for candidate in records.dataset_commits(other.name):
            scanned += 1
            if scanned > MAX_SCANNED:
                return made
            if (dataset, commit) in input_commits(candidate.provenance):
                made.append(
                    {
                        "dataset": other.name,
                        "commit": candidate.id,
                        "pipeline": candidate.provenance.get("pipeline"),
                        "job": candidate.provenance.get("job"),
                    }
                )
    return made


def read_by(
    records: MetadataRepository, dataset: str, commit: str, path: str = ""
) -> list[dict[str, Any]]:
    """The runs that checked the commit out, each with its step runs that read a file of
    it (below ``path`` inside the commit when given), newest run first."""
    runs = []
    for read in records.dataset_readers(dataset, commit)[:MAX_RUNS]:
        prefix = read.path + ("/" + path if path else "")
        steps = []
        for step in records.step_runs(read.run_id):
            used = [
                i.path
                for i in records.inputs_of(read.run_id, step.step_id)
                if i.path == prefix or i.path.startswith(prefix + "/")
            ]
            if used:
                steps.append({"step": step.step_id, "inputs": used})
        runs.append({**read.to_json(), "steps": steps})
    return runs


def jobs_over(jobs: list[dict[str, Any]], dataset: str, commit: str) -> list[dict[str, Any]]:
    """The pipeline jobs (as the project's state keeps them) that read the commit, in any
    state: a failed or running job has no output commit to find it by."""
    return [
        {
            "job": job["id"],
            "pipeline": job["pipeline"],
            "state": job["state"],
            "output_commit": job.get("output_commit"),
        }
        for job in jobs
        if (dataset, commit) in input_commits({"inputs": job.get("inputs")})
    ]


def commit_lineage(
    records: MetadataRepository,
    dataset: str,
    commit: str,
    path: str = "",
    jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``conveyor lineage NAME@REF[:PATH]``'s both directions (``jobs``: the project's
    pipeline jobs, to find those that read it)."""
    return {
        "upstream": upstream(records, dataset, commit),
        "read_by": read_by(records, dataset, commit, path),
        "made_into": made_from(records, dataset, commit),
        "jobs": jobs_over(jobs or [], dataset, commit),
    }
