"""One glob dialect: what a pattern names in the plan is what the workspace hashes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.execute.workspace import Workspace
from conveyor.plan.graph import overlaps
from conveyor.spec.patterns import covers, fixed_dir, glob_paths, matches, may_hold
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache

_NAMES = ["a", "b", "x.csv", "y.txt", ".h", ".z.csv"]
_SEGMENTS = ["*", "**", "a", "b", "*.csv", "?", ".h", ".*", "[ab]", "x.*", "*.txt"]

trees = st.lists(
    st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4).map("/".join),
    min_size=1,
    max_size=8,
)
patterns = st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=4).map("/".join)


def _make(root: Path, paths: list[str]) -> list[str]:
    """The files of ``paths`` that could be made (a path under a file is skipped)."""
    files = []
    for rel in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        target = root / rel
        if any(f == rel or f.startswith(rel + "/") or rel.startswith(f + "/") for f in files):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)
        files.append(rel)
    return files


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, pattern=patterns)
def test_the_plan_reads_what_the_workspace_hashes(tree: list[str], pattern: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        files = _make(root, tree)
        store = ContentStore(Path(tmp) / "store")
        workspace = Workspace(root, store, DigestCache(Path(tmp) / "digests.sqlite"))
        hashed = {r.path for r in workspace.resolve_inputs([pattern], optional={pattern})}
    planned = {f for f in files if covers(pattern, f)}
    assert hashed == planned
    # ordering may be more cautious than hashing (a file output may be a directory), never
    # less: a step writing a file it hashes, or a directory above one, is ordered first
    assert all(overlaps(pattern, f) for f in planned)
    directories = {f.rsplit("/", n)[0] for f in files for n in range(1, f.count("/") + 1)}
    for directory in directories:
        if any(f.startswith(directory + "/") for f in planned):
            assert overlaps(pattern, directory), directory


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("data/*.csv", "data/x.csv", True),
        ("data/*.csv", "data/sub/x.csv", False),
        ("data/**/*.csv", "data/x.csv", True),
        ("data/**/*.csv", "data/sub/deeper/x.csv", True),
        ("data/*", "data/.hidden", False),
        ("data/.*", "data/.hidden", True),
        ("**/*.csv", ".cache/x.csv", False),
        ("data/{a,b}.csv", "data/a.csv", False),  # no brace expansion
        ("data/[ab].csv", "data/b.csv", True),
        ("data/[!ab].csv", "data/c.csv", True),
    ],
)
def test_matches(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


@pytest.mark.parametrize(
    ("pattern", "directory", "expected"),
    [
        ("data/**/*.csv", "data/sub", True),
        ("data/*.csv", "data/sub", False),
        ("data/*/x.csv", "data/sub", True),
        ("data/*/x.csv", "data/.sub", False),
        ("data/*.csv", "data", True),
        ("data/*.csv", ".", True),
        ("*/x.csv", "data/sub", False),
        ("data/*", "data/sub", True),  # inside a directory the glob names
    ],
)
def test_may_hold(pattern: str, directory: str, expected: bool) -> None:
    assert may_hold(pattern, directory) is expected


def test_fixed_dir_is_the_literal_head() -> None:
    assert fixed_dir("data/raw/*.csv") == "data/raw"
    assert fixed_dir("*.csv") == "."
    assert fixed_dir("data/**/x") == "data"


def test_glob_paths_skips_dot_files_and_keeps_absolute_patterns(tmp_path: Path) -> None:
    for rel in ("p/data/a.csv", "p/data/.b.csv", "p/data/sub/c.csv", "outside/d.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    root = tmp_path / "p"
    assert glob_paths("data/**/*.csv", root) == ["data/a.csv", "data/sub/c.csv"]
    assert glob_paths("data/*/", root) == ["data/sub/"]
    assert glob_paths("../outside/*.csv", root) == ["../outside/d.csv"]
    absolute = f"{tmp_path}/outside/*.csv"
    assert glob_paths(absolute, root) == [f"{tmp_path}/outside/d.csv"]
