"""``TreeFiles`` lists a commit's tree as ``ProjectFiles`` lists a checkout of it: the
pages of a server draw a pushed run's datums from it (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.sdk.listing import ProjectFiles, TreeFiles

pytestmark = pytest.mark.integration

PATTERNS = [
    "data/*.csv",
    "data/**/*.csv",
    "data/*/",
    "data/",
    "data/a.csv",
    "missing/*.txt",
    "nope.txt",
    "**/*.txt",
    "*",
    ".hidden/*",
]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_a_commits_tree_lists_what_its_checkout_lists(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for path in ("data/a.csv", "data/b.csv", "data/sub/c.csv", "data/sub/d.txt", "top.txt"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(path)
    (repo / ".hidden").mkdir()
    (repo / ".hidden" / "x").write_text("x")
    _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "x")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "data" / "later.csv").write_text("not committed")  # the tree does not have it
    checkout = tmp_path / "checkout"
    _git(tmp_path, "clone", "-q", str(repo), str(checkout))
    tree, files = TreeFiles(repo, commit), ProjectFiles(checkout)
    for pattern in PATTERNS:
        assert tree(pattern) == files(pattern), pattern
    assert tree("data/*.csv") == ("data/a.csv", "data/b.csv")
    assert TreeFiles(repo, commit, limit=3)("data/*.csv") == ()  # too big a tree: nothing
    assert TreeFiles(repo, "--output=/tmp/x")("data/*.csv") == ()  # never an option
