"""A directory input's files are keyed by their path under the project root, as
``os.path.relpath`` gives it, however the directory and the root are written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.execute.workspace import Workspace
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache


@pytest.mark.parametrize(
    "rel", ["data", "data/", "./data", "data/../data", "data//sub", "data/sub", ".", "../p/data"]
)
@pytest.mark.parametrize("root_form", ["normal", "dotted"])
def test_tree_file_keys_are_the_relative_paths(tmp_path: Path, rel: str, root_form: str) -> None:
    root = tmp_path / "p"
    for name in ("data/a.txt", "data/sub/b.txt", "data/sub/deeper/c.txt", "top.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    given = root if root_form == "normal" else Path(f"{tmp_path}/p/../p")
    workspace = Workspace(given, ContentStore(tmp_path / "store"), DigestCache(tmp_path / "d.db"))
    keys = [record.path for record in workspace.resolve_inputs([rel])]
    full = os.path.join(os.fspath(given), rel)
    expected = sorted(
        os.path.relpath(os.path.join(d, f), os.fspath(given))
        for d, _, files in os.walk(full)
        for f in files
    )
    assert keys == expected
    assert keys and all(not key.startswith(("/", "./")) for key in keys)
