"""A dataset commit's lineage over real records (a stdlib SQLite file): upstream through
pipeline jobs' provenance, downstream to the runs that checked it out (and the step runs
that read its files) and to the commits jobs made from it; an artifact's graph reaches
the dataset commit its producer's inputs came from; a pipeline's `datasets:` checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.datasets import DatasetCommitRecord, DatasetReadRecord, DatasetRecord
from conveyor.metadata.lite import open_lite
from conveyor.metadata.records import InputRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.sdk.datasets.lineage import commit_lineage, upstream
from conveyor.sdk.inspect import trace
from conveyor.server.web.lineage import artifact_id, commit_id, lineage_graph, step_id
from conveyor.store.cas import ContentStore

A, B, C, OUT = ("a" * 32, "b" * 32, "c" * 32, "4" * 64)
F1, F2 = ("1" * 64, "2" * 64)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[MetadataRepository]:
    repo = open_lite(tmp_path / "records.db")
    yield repo
    repo.close()


def _commit(records: MetadataRepository, dataset: str, commit: str, inputs: dict[str, Any]) -> None:
    records.create_dataset(DatasetRecord(dataset, 1.0, ""))
    provenance = {"pipeline": dataset, "job": "j-" + dataset, "inputs": inputs} if inputs else {}
    record = DatasetCommitRecord(
        commit, dataset, None, "master", "t" * 64, "", 1.0, 0, 0, provenance
    )
    assert records.commit_dataset(record)


def _chain(records: MetadataRepository) -> None:
    """raw@A -> (pipeline clean) clean@B -> (pipeline model) model@C."""
    _commit(records, "raw", A, {})
    _commit(records, "clean", B, {"raw": {"dataset": "raw", "branch": "master", "commit": A}})
    _commit(records, "model", C, {"in": {"dataset": "clean", "commit": B}, "n": 3})


def _read_run(records: MetadataRepository, run_id: str, at: float, commit: str) -> None:
    """A run that checked clean@commit out at data/clean: `prep` read both of its files and
    wrote out.txt, `other` read only a file of the repository."""
    records.create_run(
        RunRecord(run_id, "demo", RunStatus.SUCCEEDED, "c" * 40, dirty=False, created_at=at)
    )
    records.record_dataset_reads(
        [DatasetReadRecord(run_id, "data/clean", "clean", commit, "clean@master")]
    )
    batch = WriteBatch()
    for step, reads in (
        ("j.prep", [("data/clean/x/1.txt", F1), ("data/clean/2.txt", F2)]),
        ("j.other", [("data/cleaner.txt", F2)]),  # a sibling path, not inside the checkout
    ):
        outputs = [OutputRecord("out.txt", OUT)] if step == "j.prep" else []
        batch.put_step_run(StepRunRecord(run_id, step, "j", StepStatus.SUCCEEDED, outputs=outputs))
        batch.inputs[(run_id, step)] = [InputRecord(p, d) for p, d in reads]
    records.write(batch)


def test_upstream_follows_provenance_levels_with_the_pipeline_and_job_of_each(
    records: MetadataRepository,
) -> None:
    _chain(records)
    found = upstream(records, "model", C)
    assert [(u["dataset"], u["commit"], u["depth"]) for u in found] == [
        ("clean", B, 1),
        ("raw", A, 2),
    ]
    assert found[1]["into"] == {"dataset": "clean", "commit": B}
    assert (found[1]["pipeline"], found[1]["job"]) == ("clean", "j-clean")
    assert upstream(records, "raw", A) == []


def test_upstream_stops_on_a_cycle_of_provenance(records: MetadataRepository) -> None:
    _commit(records, "x", A, {"y": {"dataset": "y", "commit": B}})
    _commit(records, "y", B, {"x": {"dataset": "x", "commit": A}})
    assert [(u["dataset"], u["commit"]) for u in upstream(records, "x", A)] == [("y", B)]


def test_downstream_names_the_runs_the_steps_that_read_its_files_and_the_commits_made(
    records: MetadataRepository,
) -> None:
    _chain(records)
    _read_run(records, "r1", 1.0, B)
    _read_run(records, "r2", 2.0, B)
    _read_run(records, "r3", 3.0, A * 1)  # another commit: not a reader of clean@B
    found = commit_lineage(records, "clean", B)
    assert [r["run"] for r in found["read_by"]] == ["r2", "r1"]
    assert found["read_by"][0]["steps"] == [
        {"step": "j.prep", "inputs": ["data/clean/2.txt", "data/clean/x/1.txt"]}
    ]
    assert [(m["dataset"], m["commit"], m["pipeline"]) for m in found["made_into"]] == [
        ("model", C, "model")
    ]
    inside = commit_lineage(records, "clean", B, "x")  # clean@B:/x: only what read below it
    assert inside["read_by"][0]["steps"] == [{"step": "j.prep", "inputs": ["data/clean/x/1.txt"]}]
    assert commit_lineage(records, "raw", A)["read_by"] == []


def test_an_artifact_traces_to_the_dataset_commit_its_inputs_came_from(
    records: MetadataRepository, tmp_path: Path
) -> None:
    _chain(records)
    _read_run(records, "r1", 1.0, B)
    store = ContentStore(tmp_path / "store")
    produced = trace(records, store, OUT, "out.txt")["produced_by"][0]
    assert [(d["dataset"], d["commit"], d["path"]) for d in produced["datasets"]] == [
        ("clean", B, "data/clean")
    ]
    graph = lineage_graph(records, store, OUT, "out.txt", lambda run: True)
    prep, clean = step_id("r1", "j.prep"), commit_id("clean", B)
    assert graph.nodes[clean].kind == "commit"
    assert clean in graph.needs[prep]
    assert graph.needs[artifact_id("out.txt", OUT)] == {prep}


def test_the_lineage_page_links_a_dataset_commit_to_its_dataset_page(
    records: MetadataRepository, tmp_path: Path
) -> None:
    from conveyor.server.web.render import _environment

    _chain(records)
    _read_run(records, "r1", 1.0, B)
    graph = lineage_graph(records, ContentStore(tmp_path / "s"), OUT, "out.txt", lambda r: True)
    html = (
        _environment()
        .get_template("lineage.html")
        .render(project="demo", artifact="out.txt", graph=graph)
    )
    assert f'href="/ui/p/demo/datasets/clean?ref={B}" class="node commit"' in html
    assert f"clean@{B[:8]}" in html


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        ({"../up": "raw@master"}, "must be a relative path inside the project"),
        ({"/abs": "raw@master"}, "must be a relative path inside the project"),
        ({".conveyor/x": "raw"}, "must be a relative path inside the project"),
        ({"a//b": "raw"}, "must be a relative path inside the project"),
        ({"data": "raw", "data/x": "clean"}, "'data/x' is inside 'data'"),
        ({"data": "raw@master; rm -rf /"}, "is not a dataset ref"),
        ({"data": "../raw"}, "is not a dataset ref"),
    ],
)
def test_a_pipelines_datasets_are_checked(datasets: dict[str, str], message: str) -> None:
    from pydantic import ValidationError

    from conveyor.spec.model import PipelineSpec

    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        PipelineSpec.model_validate(
            {"datasets": datasets, "jobs": {"j": {"steps": [{"run": "true"}]}}}
        )


def test_a_pipelines_datasets_reach_the_plan() -> None:
    from conveyor.plan.compile import compile_plan
    from conveyor.plan.model import ExecutionPlan
    from conveyor.spec.model import PipelineSpec

    spec = PipelineSpec.model_validate(
        {
            "datasets": {"data/raw": "images@master:/cats", "b": "labels@v1~2"},
            "jobs": {"j": {"steps": [{"run": "true"}]}},
        }
    )
    plan = compile_plan(spec, {}, ())
    assert plan.datasets == (("b", "labels@v1~2"), ("data/raw", "images@master:/cats"))
    assert plan.to_json()["datasets"] == {"b": "labels@v1~2", "data/raw": "images@master:/cats"}
    assert ExecutionPlan.from_json(plan.to_json()) == plan


def test_jobs_over_a_commit_in_any_state_are_found_by_their_inputs() -> None:
    from conveyor.sdk.datasets.lineage import jobs_over

    jobs = [
        {
            "id": "j1",
            "pipeline": "edges",
            "state": "success",
            "output_commit": C,
            "inputs": {"images": {"dataset": "images", "branch": "master", "commit": A}},
        },
        {
            "id": "j2",
            "pipeline": "edges",
            "state": "failure",
            "output_commit": None,
            "inputs": {"images": {"dataset": "images", "branch": "master", "commit": A}},
        },
        {
            "id": "j3",
            "pipeline": "edges",
            "state": "success",
            "output_commit": B,
            "inputs": {"images": {"dataset": "images", "branch": "master", "commit": B}},
        },
        {
            "id": "j4",
            "pipeline": "empty",
            "state": "success",
            "output_commit": None,
            "inputs": {"images": {"dataset": "images", "branch": "master", "commit": None}},
        },
    ]
    found = jobs_over(jobs, "images", A)
    assert [(j["job"], j["state"], j["output_commit"]) for j in found] == [
        ("j1", "success", C),
        ("j2", "failure", None),
    ]
