"""The update step of ``pipeline ci`` is all or nothing: when a later spec file fails,
the pipelines of the files done before it return to their previous spec version (new
ones go, with their still-empty output datasets). Over a real store and a real stdlib
records file; no build (the update step only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import SpecError
from conveyor.metadata.lite import open_lite
from conveyor.sdk.pachyderm_ci import PipelineCi, SpecFile, _order, _written_images
from conveyor.sdk.project import Project
from conveyor.spec.pachyderm import load_specs
from conveyor.store.cas import ContentStore


def write(folder: Path, name: str, repo: str, image: str = "org/edges:1") -> SpecFile:
    data = {
        "pipeline": {"name": name},
        "transform": {"image": image, "cmd": ["sh"]},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return SpecFile(path, path.name)


@pytest.fixture
def ci(tmp_path: Path) -> PipelineCi:
    records = open_lite(tmp_path / ".conveyor" / "conveyor.db")
    project = Project(tmp_path, records=records, store=ContentStore(tmp_path / "store"))
    flow = PipelineCi(project)
    flow.pipelines.datasets.create("images", "")
    return flow


def update(ci: PipelineCi, files: list[SpecFile], tag: str) -> list[dict[str, Any]]:
    logs = ci.root / tag
    logs.mkdir(parents=True)
    loaded = [(f, load_specs(f.path, f.shown)) for f in files]
    ordered = _order(loaded)
    return ci._update(ordered, _written_images(loaded), f"org/edges:{tag}", logs)


def images(ci: PipelineCi, name: str) -> list[str | None]:
    return [v.spec().transform.image for v in ci.pipelines.state.versions(name)]


def test_a_failed_second_update_takes_the_first_back(ci: PipelineCi, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    edges, montage = write(specs, "edges", "images"), write(specs, "montage", "edges")
    done = update(ci, [edges, montage], "aaa")
    assert [d["action"] for d in done] == ["created", "created"]
    assert images(ci, "edges") == ["org/edges:aaa"]
    # the next commit: montage now reads a dataset that does not exist
    montage = write(specs, "montage", "nowhere")
    with pytest.raises(SpecError, match="'nowhere', which does not exist"):
        update(ci, [edges, montage], "bbb")
    assert images(ci, "edges") == ["org/edges:aaa"]  # its version 2 was taken back
    assert images(ci, "montage") == ["org/edges:aaa"]
    log = (ci.root / "bbb" / "update.log").read_text()
    assert "rolled back edges: back to version 1" in log
    done = update(ci, [edges, write(specs, "montage", "edges")], "ccc")  # a good one again
    assert images(ci, "edges") == ["org/edges:aaa", "org/edges:ccc"]
    assert [v.version for v in ci.pipelines.state.versions("edges")] == [1, 2]


def test_a_new_pipeline_rolled_back_goes_with_its_empty_dataset(
    ci: PipelineCi, tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    edges, broken = write(specs, "edges", "images"), write(specs, "montage", "nowhere")
    with pytest.raises(SpecError):
        update(ci, [edges, broken], "aaa")
    assert ci.pipelines.state.names() == []
    assert ci.pipelines.datasets.records.get_dataset("edges") is None
    assert ci.pipelines.datasets.records.get_dataset("images") is not None  # not the flow's
    assert "rolled back edges: deleted (it was new)" in (ci.root / "aaa" / "update.log").read_text()
