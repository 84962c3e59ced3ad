"""An artifact's lineage graph over real records (a stdlib SQLite file) and a real store:
upstream through producers and their inputs, downstream through readers and their
outputs, across runs; runs the caller may not see left out; bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import NotFoundError
from conveyor.metadata.lite import open_lite
from conveyor.metadata.records import InputRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.server.web import lineage
from conveyor.server.web.lineage import artifact_id, lineage_graph, step_id
from conveyor.store.cas import ContentStore

RAW, DATA, MODEL, SCORE, OTHER = ("1" * 64, "2" * 64, "3" * 64, "4" * 64, "5" * 64)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[MetadataRepository]:
    repo = open_lite(tmp_path / "records.db")
    yield repo
    repo.close()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


def _run(records: MetadataRepository, run_id: str, at: float) -> None:
    records.create_run(
        RunRecord(run_id, "demo", RunStatus.SUCCEEDED, "c" * 40, dirty=False, created_at=at)
    )


def _step(
    batch: WriteBatch,
    run_id: str,
    step: str,
    reads: list[tuple[str, str]],
    writes: list[tuple[str, str]],
) -> None:
    outputs = [OutputRecord(path, digest) for path, digest in writes]
    record = StepRunRecord(
        run_id=run_id, step_id=step, job="a", status=StepStatus.SUCCEEDED, outputs=outputs
    )
    batch.put_step_run(record)
    batch.inputs[(run_id, step)] = [InputRecord(path, digest) for path, digest in reads]


def _history(records: MetadataRepository) -> None:
    """r1: prep reads raw.csv, writes data.csv; fit reads data.csv, writes model.bin.
    r2: score reads model.bin (r1's), writes score.json. x1 (another project) reads
    data.csv too."""
    for run_id, at in (("r1", 1.0), ("r2", 2.0), ("x1", 3.0)):
        _run(records, run_id, at)
    batch = WriteBatch()
    _step(batch, "r1", "a.prep", [("raw.csv", RAW)], [("data.csv", DATA)])
    _step(batch, "r1", "a.fit", [("data.csv", DATA)], [("model.bin", MODEL)])
    _step(batch, "r2", "a.score", [("model.bin", MODEL)], [("score.json", SCORE)])
    _step(batch, "x1", "a.steal", [("data.csv", DATA)], [("loot", OTHER)])
    records.write(batch)


def ours(run_id: str) -> bool:
    return not run_id.startswith("x")


def test_the_graph_goes_upstream_and_downstream_across_runs(
    records: MetadataRepository, store: ContentStore
) -> None:
    _history(records)
    graph = lineage_graph(records, store, DATA, "data.csv", ours)
    prep, fit, score = step_id("r1", "a.prep"), step_id("r1", "a.fit"), step_id("r2", "a.score")
    data, raw = artifact_id("data.csv", DATA), artifact_id("raw.csv", RAW)
    model, scored = artifact_id("model.bin", MODEL), artifact_id("score.json", SCORE)
    assert graph.focus == data
    assert set(graph.nodes) == {data, raw, prep, fit, model, score, scored}
    assert graph.needs == {
        prep: {raw},
        data: {prep},
        fit: {data},
        model: {fit},
        score: {model},
        scored: {score},
    }
    assert [p["step"] for p in graph.produced_by] == ["a.prep"]
    assert [c["run"] for c in graph.consumed_by] == ["r1"]
    assert graph.drawing is not None and len(graph.drawing.nodes) == 7
    assert not graph.cut


def test_runs_the_caller_may_not_see_are_left_out(
    records: MetadataRepository, store: ContentStore
) -> None:
    _history(records)
    everything = lineage_graph(records, store, DATA, "data.csv", lambda _run: True)
    assert step_id("x1", "a.steal") in everything.nodes
    assert (
        step_id("x1", "a.steal") not in lineage_graph(records, store, DATA, "data.csv", ours).nodes
    )
    with pytest.raises(NotFoundError):
        lineage_graph(records, store, OTHER, "loot", ours)  # only another project's run


def test_an_unknown_artifact_is_not_found(records: MetadataRepository, store: ContentStore) -> None:
    _history(records)
    with pytest.raises(NotFoundError, match="no run of this project"):
        lineage_graph(records, store, "9" * 64, "nothing.csv", ours)


def test_a_file_many_runs_read_is_cut_to_a_bounded_graph(
    records: MetadataRepository, store: ContentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage, "MAX_NODES", 10)
    _history(records)
    batch = WriteBatch()
    for i in range(20):
        _run(records, f"r{i + 10}", 10.0 + i)
        _step(batch, f"r{i + 10}", "a.read", [("data.csv", DATA)], [(f"o{i}", f"{i:064x}")])
    records.write(batch)
    graph = lineage_graph(records, store, DATA, "data.csv", ours)
    assert graph.cut
    assert len(graph.nodes) <= 10
    readers = [n for n in graph.nodes.values() if n.kind == "step" and n.step == "a.read"]
    assert len(readers) <= lineage.PER_ARTIFACT


def _commit(records: MetadataRepository, dataset: str, commit: str, inputs: dict[str, Any]) -> None:
    from conveyor.metadata.datasets import DatasetCommitRecord, DatasetRecord

    records.create_dataset(DatasetRecord(dataset, 1.0, ""))
    provenance = {"inputs": inputs} if inputs else {}
    record = DatasetCommitRecord(
        commit, dataset, None, "master", "t" * 64, "", 1.0, 0, 0, provenance
    )
    assert records.commit_dataset(record)


def test_a_dataset_commits_provenance_upstream_and_downstream(
    records: MetadataRepository,
) -> None:
    from conveyor.server.web.lineage import commit_graph, commit_id

    _commit(records, "raw", "c" * 32, {})
    _commit(records, "clean", "d" * 32, {"in": {"dataset": "raw", "commit": "c" * 32}})
    _commit(records, "model", "e" * 32, {"x": {"dataset": "clean", "commit": "d" * 32}})
    _commit(records, "junk", "f" * 32, {"x": {"dataset": "clean", "commit": None}, "y": 5})
    graph = commit_graph(records, "clean", "d" * 32)
    raw, clean, model = (
        commit_id(*p) for p in (("raw", "c" * 32), ("clean", "d" * 32), ("model", "e" * 32))
    )
    assert set(graph.nodes) == {raw, clean, model}
    assert graph.needs == {clean: {raw}, model: {clean}}
    assert graph.drawing is not None


def test_the_dataset_page_draws_the_provenance_as_links(records: MetadataRepository) -> None:
    from conveyor.server.web.lineage import commit_graph
    from conveyor.server.web.render import _environment

    _commit(records, "raw", "c" * 32, {})
    _commit(records, "clean", "d" * 32, {"in": {"dataset": "raw", "commit": "c" * 32}})
    commit = records.dataset_commit("clean", "d" * 32)
    html = (
        _environment()
        .get_template("dataset.html")
        .render(
            project="demo",
            dataset=records.get_dataset("clean"),
            ref="",
            folder="",
            parents=[],
            commit=commit,
            branches={"master": "d" * 32},
            log=[commit],
            entries=[],
            entries_total=0,
            provenance=commit_graph(records, "clean", "d" * 32),
        )
    )
    assert f'href="/ui/p/demo/datasets/raw?ref={"c" * 32}" class="node commit"' in html
    assert "clean@dddddddd" in html and "<polyline" in html
