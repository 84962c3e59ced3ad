"""A pipeline's `datasets:` is data from a repository: its paths never lead out of the
project (no '..', no absolute path, no link on the way), a directory of the user's is
never replaced, a bad ref changes nothing, and a server's run never reaches another
project's dataset."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import ValidationError

from conveyor.errors import NotFoundError, UsageError
from conveyor.metadata.lite import open_lite
from conveyor.sdk.datasets.checkouts import check_out
from conveyor.sdk.datasets.refs import parse_ref
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.project import Project
from conveyor.spec.model import PipelineSpec
from conveyor.store.cas import ContentStore


@pytest.fixture
def datasets(tmp_path: Path) -> Datasets:
    root = tmp_path / "project"
    root.mkdir()
    records = open_lite(root / ".conveyor" / "conveyor.db")
    found = Datasets(Project(root, records=records, store=ContentStore(tmp_path / "store")))
    found.create("images")
    found.put(parse_ref("images:/a.txt"), ["-"], stdin=io.BytesIO(b"a\n"))
    return found


@pytest.mark.parametrize(
    "path", ["../out", "/etc/x", "a/../../out", ".git/hooks", ".conveyor/db", "a/./b", ""]
)
def test_a_path_that_leaves_the_project_is_refused_by_the_loader(path: str) -> None:
    with pytest.raises(ValidationError, match="relative path inside the project"):
        PipelineSpec.model_validate(
            {"datasets": {path: "images"}, "jobs": {"j": {"steps": [{"run": "true"}]}}}
        )


@pytest.mark.parametrize("ref", ["images@master;rm", "images@$(id)", "../images", "im ages"])
def test_a_ref_that_is_not_a_dataset_ref_is_refused_by_the_loader(ref: str) -> None:
    with pytest.raises(ValidationError, match="is not a dataset ref"):
        PipelineSpec.model_validate(
            {"datasets": {"data": ref}, "jobs": {"j": {"steps": [{"run": "true"}]}}}
        )


def test_a_link_on_the_way_out_of_the_project_is_refused(
    datasets: Datasets, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (datasets.project.root / "data").symlink_to(outside)
    with pytest.raises(UsageError, match="data is a link or a file"):
        check_out(datasets, [("data/raw", "images@master")])
    assert list(outside.iterdir()) == []


def test_a_directory_of_the_user_and_a_link_in_its_place_are_left_alone(
    datasets: Datasets, tmp_path: Path
) -> None:
    root = datasets.project.root
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("keep\n")
    (root / "linked").symlink_to(tmp_path)
    for path in ("mine", "linked"):
        with pytest.raises(UsageError, match="already exists and no run checked it out"):
            check_out(datasets, [(path, "images@master")])
    assert (root / "mine" / "keep.txt").read_text() == "keep\n"
    assert (root / "linked").is_symlink()


def test_a_bad_ref_changes_nothing_even_after_good_ones(datasets: Datasets) -> None:
    root = datasets.project.root
    with pytest.raises(NotFoundError, match="there is no dataset nothing"):
        check_out(datasets, [("a", "images@master"), ("b", "nothing@master")])
    with pytest.raises(UsageError, match="datasets: c:"):
        check_out(datasets, [("a", "images@master"), ("c", "images@bad..ref")])
    with pytest.raises(NotFoundError, match="there is no /missing in images@master:/missing"):
        check_out(datasets, [("a", "images@master"), ("d", "images@master:/missing")])
    assert not (root / "a").exists() and not (root / "b").exists()


def test_a_checkout_replaces_only_what_an_earlier_run_checked_out(datasets: Datasets) -> None:
    root = datasets.project.root
    first = check_out(datasets, [("data/raw", "images@master")])
    assert [(c.path, c.files) for c in first] == [("data/raw", 1)]
    (root / "data/raw/stale.txt").write_text("left by a step\n")
    datasets.put(parse_ref("images:/b.txt"), ["-"], stdin=io.BytesIO(b"b\n"))
    check_out(datasets, [("data/raw", "images@master")])
    assert sorted(p.name for p in (root / "data/raw").iterdir()) == ["a.txt", "b.txt"]


def test_a_server_run_never_reaches_another_projects_dataset(tmp_path: Path) -> None:
    """A server's records hold every project's datasets (as ``project/name``): a run of
    ``demo`` naming ``secret`` finds no dataset, whatever another project holds."""
    from conveyor.plan.model import ExecutionPlan
    from conveyor.sdk.datasets.scoped import ScopedDatasets
    from conveyor.sdk.running import RunRequest, _check_out_datasets

    records = open_lite(tmp_path / "server.db")
    store = ContentStore(tmp_path / "store")
    other = Project(tmp_path / "other", records=records, store=store)
    theirs = Datasets(other, ScopedDatasets(records, "other"))
    theirs.create("secret")
    theirs.put(parse_ref("secret:/key.txt"), ["-"], stdin=io.BytesIO(b"theirs\n"))
    root = tmp_path / "demo"
    root.mkdir()
    project = Project(root, state_dir=tmp_path / "run", records=records, store=store)
    for ref in ("secret@master", "secret"):
        plan = ExecutionPlan("p", (), (), datasets=(("data", ref),))
        with pytest.raises(NotFoundError, match="there is no dataset secret"):
            _check_out_datasets(project, plan, RunRequest(dataset_scope="demo"))
    commit = theirs.resolve(parse_ref("secret@master")).commit.id
    pinned = RunRequest(dataset_scope="demo", dataset_pins={"data": commit})
    plan = ExecutionPlan("p", (), (), datasets=(("data", "secret@master"),))
    with pytest.raises(NotFoundError, match="there is no dataset secret"):
        _check_out_datasets(project, plan, pinned)  # a pin is no way in either
    assert not (root / "data").exists()
    assert records.dataset_readers("secret", commit) == []
