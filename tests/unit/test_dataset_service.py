"""The dataset service over a real store and a real stdlib records file in a temp
directory: a put that races another on the same branch, the model of puts (replace,
append) against a plain dictionary, and references resolved through history."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.errors import NotFoundError, UsageError
from conveyor.metadata.datasets import DatasetCommitRecord
from conveyor.metadata.lite import open_lite
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.datasets.refs import parse_ref
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.project import Project
from conveyor.store.cas import ContentStore


def make(root: Path, records: Any = None) -> Datasets:
    root.mkdir(parents=True, exist_ok=True)
    repo = records or open_lite(root / ".conveyor" / "conveyor.db")
    return Datasets(Project(root, records=repo, store=ContentStore(root / "store")))


def put_text(datasets: Datasets, target: str, text: str, append: bool = False) -> Any:
    return datasets.put(parse_ref(target), ["-"], append=append, stdin=io.BytesIO(text.encode()))


def read(datasets: Datasets, target: str) -> str:
    ref = parse_ref(target)
    entry = datasets.resolve(ref).files[ref.path]
    return datasets.project.store.read_bytes(entry.digest).decode()


class Racing:
    """Records whose first ``commit_dataset`` lets a competing put land first."""

    def __init__(self, inner: MetadataRepository, compete: Any) -> None:
        self.inner = inner
        self.compete = compete

    def commit_dataset(self, commit: DatasetCommitRecord) -> bool:
        if self.compete is not None:
            compete, self.compete = self.compete, None
            compete()
        return self.inner.commit_dataset(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("append", [False, True])
def test_a_put_whose_head_moved_lands_on_the_new_head(tmp_path: Path, append: bool) -> None:
    plain = make(tmp_path)
    plain.create("ds")
    put_text(plain, "ds:/log", "one\n")
    racing = Racing(plain.project.records, lambda: put_text(plain, "ds:/log", "two\n", append))
    datasets = make(tmp_path, racing)
    mine = put_text(datasets, "ds:/log", "three\n", append)
    log = plain.log(parse_ref("ds"), 10)
    assert len(log) == 3 and log[0].id == mine.id
    assert mine.parent == log[1].id  # the competitor's commit, not the one it started from
    assert read(plain, "ds:/log") == ("one\ntwo\nthree\n" if append else "three\n")
    assert read(plain, "ds@master^:/log") == ("one\ntwo\n" if append else "two\n")


def test_references_walk_history_and_refuse_what_is_not_there(tmp_path: Path) -> None:
    datasets = make(tmp_path)
    datasets.create("ds")
    with pytest.raises(NotFoundError, match="no commits"):
        datasets.resolve(parse_ref("ds"))
    commits = [put_text(datasets, "ds:/f", str(i)) for i in range(4)]
    assert datasets.resolve(parse_ref("ds@master~3")).commit.id == commits[0].id
    assert datasets.resolve(parse_ref("ds^^")).commit.id == commits[1].id
    assert datasets.resolve(parse_ref(f"ds@{commits[2].id[:8]}")).commit.id == commits[2].id
    with pytest.raises(NotFoundError, match="further"):
        datasets.resolve(parse_ref("ds@master~4"))
    with pytest.raises(NotFoundError, match="no branch or commit"):
        datasets.resolve(parse_ref("ds@nope"))
    with pytest.raises(UsageError, match="commits never change"):
        put_text(datasets, f"ds@{commits[0].id}:/f", "x")
    with pytest.raises(UsageError, match="commits never change"):
        put_text(datasets, "ds@master^:/f", "x")
    datasets.branch("ds", "old", parse_ref("ds~2"))
    put_text(datasets, "ds@old:/g", "on old")
    assert sorted(datasets.resolve(parse_ref("ds@old")).files) == ["f", "g"]
    assert datasets.resolve(parse_ref("ds@old^")).commit.id == commits[1].id


OPS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "d/c"]), st.binary(max_size=8), st.booleans()),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_puts_agree_with_a_dictionary_of_files(tmp_path_factory: Any, ops: Any) -> None:
    datasets = make(tmp_path_factory.mktemp("model"))
    datasets.create("ds")
    model: dict[str, bytes] = {}
    for path, data, append in ops:
        datasets.put(parse_ref(f"ds:/{path}"), ["-"], append=append, stdin=io.BytesIO(data))
        model[path] = model.get(path, b"") + data if append else data
        files = datasets.resolve(parse_ref("ds")).files
        store = datasets.project.store
        assert {p: store.read_bytes(e.digest) for p, e in files.items()} == model
        assert datasets.resolve(parse_ref("ds")).commit.size == sum(map(len, model.values()))
    assert len(datasets.log(parse_ref("ds"), 100)) == len(ops)


def test_projects_sharing_records_see_only_their_own_datasets(tmp_path: Path) -> None:
    from conveyor.sdk.datasets.scoped import ScopedDatasets

    shared = open_lite(tmp_path / "shared.db")
    demo = make(tmp_path / "demo", ScopedDatasets(shared, "demo"))
    other = make(tmp_path / "other", ScopedDatasets(shared, "other"))
    demo.create("images")
    other.create("images")
    commit = put_text(demo, "images:/a", "demo's")
    assert commit.dataset == "images"
    assert [d["name"] for d in demo.summaries()] == ["images"]
    with pytest.raises(NotFoundError):
        other.resolve(parse_ref("images"))  # the other project's images has no commits
    with pytest.raises(NotFoundError):
        other.resolve(parse_ref(f"images@{commit.id}"))
    assert [d.name for d in shared.list_datasets()] == ["demo/images", "other/images"]
    assert read(demo, "images:/a") == "demo's"
