"""Globs and filter patterns from a pipeline file are data: no loop, no blow-up."""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.execute.workspace import Workspace
from conveyor.sdk.listing import ProjectFiles
from conveyor.spec.patterns import ref_matches
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache


def test_a_symlink_loop_does_not_multiply_a_globstar(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "data/real").mkdir(parents=True)
    (root / "data/real/a.csv").write_text("a")
    os.symlink("..", root / "data/real/loop")  # data/real/loop/real/loop/... forever
    workspace = Workspace(root, ContentStore(tmp_path / "store"), DigestCache(tmp_path / "d.db"))
    hashed = [r.path for r in workspace.resolve_inputs(["data/**/*.csv"])]
    assert hashed == ["data/real/a.csv"]
    assert ProjectFiles(root)("data/**/*.csv") == ("data/real/a.csv",)


def test_a_pathological_ref_pattern_is_answered_without_backtracking() -> None:
    # a backtracking matcher takes about len(name) ** 8 steps to say no here
    pattern = "**a**a**a**a**a**a**a**b"
    assert ref_matches([pattern], "a" * 3000) is False
    assert ref_matches([pattern], "a" * 3000 + "b") is True
