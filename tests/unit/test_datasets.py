"""Versioned datasets without processes: references, the files a put makes (append and
overwrite), listings, Pachyderm globs and diffs, over a real store in a temp directory."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import NotFoundError, UsageError
from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.put import Stored, merged, plan_sources, store_sources
from conveyor.sdk.datasets.refs import DatasetRef, check_path, parse_ref
from conveyor.store.cas import ContentStore, TreeEntry

# -- references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images", DatasetRef("images")),
        ("images@dev", DatasetRef("images", "dev")),
        ("images@master^", DatasetRef("images", "master", 1)),
        ("images@master^^~3", DatasetRef("images", "master", 5)),
        ("images@master~", DatasetRef("images", "master", 1)),
        ("images^", DatasetRef("images", None, 1)),
        ("images@0a1b2c3d", DatasetRef("images", "0a1b2c3d")),
        ("images@dev:/cats/a.png", DatasetRef("images", "dev", 0, "cats/a.png")),
        ("images:/cats/", DatasetRef("images", None, 0, "cats", slash=True)),
        ("images:/", DatasetRef("images", None, 0, "", slash=True)),
        ("images@^:x", DatasetRef("images", "master", 1, "x")),
    ],
)
def test_references_parse(text: str, expected: DatasetRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "../etc", "a/b", "im ages", "images@", "-x", "a" * 64, "images@dev/x", "x@a:b\0"],
)
def test_bad_references_are_one_clear_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_ref(text)


@pytest.mark.parametrize("path", ["../x", "a/../../b", "a/\0b", "x" * 5000])
def test_paths_that_leave_the_dataset_are_refused(path: str) -> None:
    with pytest.raises(UsageError):
        check_path(path)


def test_what_reads_as_a_dataset_reference() -> None:
    from conveyor.sdk.datasets.refs import names_dataset

    assert names_dataset("images:/a.png") and names_dataset("images@dev") and names_dataset("x^")
    assert not names_dataset("out/a.txt")
    assert not names_dataset("results/x@y:z")
    assert not names_dataset("images")


def test_paths_are_normalised() -> None:
    assert check_path("/a//b/./c/") == "a/b/c"
    assert check_path("/") == ""


@given(st.lists(st.sampled_from(["^", "~", "~2", "~10"]), min_size=1, max_size=8))
def test_ancestry_adds_up(tokens: list[str]) -> None:
    expected = sum(1 if t in ("^", "~") else int(t[1:]) for t in tokens)
    assert parse_ref("ds@main" + "".join(tokens)).back == expected


# -- a put's sources -----------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(b"A")
    (root / "sub" / "b.png").write_bytes(b"B")
    return root


def targets(given_: list[str], path: str = "", slash: bool = False) -> list[str]:
    return [s.target for s in plan_sources(given_, path, slash, recursive=True)]


def test_sources_land_where_pachctl_puts_them(photos: Path) -> None:
    a, sub = str(photos / "a.png"), str(photos / "sub")
    assert targets([a]) == ["a.png"]
    assert targets([a], "x/y.png") == ["x/y.png"]
    assert targets([a], "raw", slash=True) == ["raw/a.png"]
    assert targets([a, str(photos / "sub" / "b.png")], "raw") == ["raw/a.png", "raw/b.png"]
    assert targets([str(photos)]) == ["photos/a.png", "photos/sub/b.png"]
    assert targets([str(photos)], "in") == ["in/a.png", "in/sub/b.png"]
    assert targets([sub], "in", slash=True) == ["in/sub/b.png"]


def test_a_directory_needs_recursive_and_stdin_needs_a_path(photos: Path) -> None:
    with pytest.raises(UsageError, match="--recursive"):
        plan_sources([str(photos)], "", False, recursive=False)
    with pytest.raises(UsageError, match="standard input"):
        plan_sources(["-"], "", False, recursive=False)
    with pytest.raises(UsageError, match="cannot read"):
        plan_sources([str(photos / "missing")], "", False, recursive=False)


def test_a_link_inside_the_directory_is_read_as_its_file(photos: Path) -> None:
    (photos / "again.png").symlink_to("sub/b.png")
    planned = {s.target: s.file for s in plan_sources([str(photos)], "", False, True)}
    assert planned["photos/again.png"] == str((photos / "sub" / "b.png").resolve())


# -- what a put makes ----------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


def put(
    store: ContentStore, tmp_path: Path, files: dict[str, TreeEntry], **contents: bytes
) -> Stored:
    entries = []
    for name, data in contents.items():
        digest = store.put_bytes(data)
        entries.append((name, TreeEntry(name, digest, len(data))))
    return Stored(entries, sum(len(d) for d in contents.values()))


def content(store: ContentStore, entry: TreeEntry) -> bytes:
    return store.read_bytes(entry.digest)


def test_a_put_replaces_files_by_default_and_keeps_the_others(
    store: ContentStore, tmp_path: Path
) -> None:
    first = merged(store, {}, put(store, tmp_path, {}, a=b"1", b=b"2"), False, tmp_path)
    second = merged(store, first, put(store, tmp_path, first, a=b"3"), False, tmp_path)
    assert {p: content(store, e) for p, e in second.items()} == {"a": b"3", "b": b"2"}


def test_append_continues_the_parents_file(store: ContentStore, tmp_path: Path) -> None:
    first = merged(store, {}, put(store, tmp_path, {}, a=b"head\n"), True, tmp_path)
    second = merged(
        store, first, put(store, tmp_path, first, a=b"tail\n", c=b"new"), True, tmp_path
    )
    assert content(store, second["a"]) == b"head\ntail\n"
    assert second["a"].size == len(b"head\ntail\n")
    assert content(store, second["c"]) == b"new"
    assert content(store, first["a"]) == b"head\n"  # the parent's commit never changes


def test_stdin_is_stored_in_constant_memory_and_files_deduplicate(
    store: ContentStore, tmp_path: Path, photos: Path
) -> None:
    sources = plan_sources(["-"], "log.txt", False, False)
    stored = store_sources(store, sources, None, tmp_path / "scratch", None, io.BytesIO(b"A"))
    again = store_sources(
        store, plan_sources([str(photos / "a.png")], "", False, False), None, tmp_path
    )
    assert stored.entries[0][1].digest == again.entries[0][1].digest  # same content, one blob
    assert sum(1 for _ in store.iter_digests()) == 1


def test_equal_files_make_equal_trees(store: ContentStore) -> None:
    d = store.put_bytes(b"x")
    one = store.put_manifest([TreeEntry("b", d, 1), TreeEntry("a", d, 1)])
    two = store.put_manifest([TreeEntry("a", d, 1), TreeEntry("b", d, 1)])
    assert one == two
    assert [e.path for e in store.read_tree(one)] == ["a", "b"]


# -- listings, globs, diffs ----------------------------------------------------------------

FILES = {
    p: TreeEntry(p, p.replace("/", "-").ljust(64, "0")[:64], 1)  # type: ignore[arg-type]
    for p in ["a.txt", "img/x.png", "img/y.png", "img/raw/z.png", ".hidden"]
}


def test_listing_shows_direct_children_with_directory_sizes() -> None:
    top = trees.listing(FILES, "")
    assert [(i.path, i.kind, i.size) for i in top] == [
        (".hidden", "file", 1),
        ("a.txt", "file", 1),
        ("img", "dir", 3),
    ]
    assert [i.path for i in trees.listing(FILES, "img")] == ["img/raw", "img/x.png", "img/y.png"]
    assert [i.path for i in trees.listing(FILES, "a.txt")] == ["a.txt"]
    with pytest.raises(NotFoundError):
        trees.listing(FILES, "nope")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/*", [".hidden", "a.txt", "img"]),
        ("/img/*", ["img/raw", "img/x.png", "img/y.png"]),
        ("/img/*.png", ["img/x.png", "img/y.png"]),
        ("/**/*.png", ["img/raw/z.png", "img/x.png", "img/y.png"]),
        ("/{a.txt,img}", ["a.txt", "img"]),
        ("/nothing*", []),
    ],
)
def test_pachyderm_globs_name_files_and_directories(pattern: str, expected: list[str]) -> None:
    assert [i.path for i in trees.glob(FILES, pattern)] == expected


def test_diff_by_path() -> None:
    new = dict(FILES)
    del new["a.txt"]
    new["b.txt"] = TreeEntry("b.txt", FILES["a.txt"].digest, 1)
    new["img/x.png"] = TreeEntry("img/x.png", "f" * 64, 2)  # type: ignore[arg-type]
    change = trees.diff(FILES, new)
    assert [e.path for e in change.added] == ["b.txt"]
    assert [e.path for e in change.removed] == ["a.txt"]
    assert [(a.path, b.size) for a, b in change.changed] == [("img/x.png", 2)]
    assert trees.diff(FILES, FILES).to_json() == {"added": [], "removed": [], "changed": []}


def test_removing_a_directory_and_a_file_that_would_be_a_directory() -> None:
    assert sorted(trees.removed(FILES, "img")) == [".hidden", "a.txt"]
    with pytest.raises(NotFoundError):
        trees.removed(FILES, "img/q")
    assert trees.conflicts(FILES, ["a.txt/inner"]) == "a.txt"
    assert trees.conflicts(FILES, ["img/new.png"]) is None
