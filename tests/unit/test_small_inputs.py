"""A step's declared inputs are hashed in the runner's loop only when that is quick: plain
files of a few bytes in all. Their ``lstat`` is then taken once, for the decision and the
key alike, and the key is the one a fresh look gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.execute.filework import INLINE_BYTES, small_inputs
from conveyor.execute.workspace import MissingInputError, Workspace
from conveyor.plan.model import StepPlan
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "p"
    (root / "dir").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("bb")
    (root / "dir" / "c.txt").write_text("c")
    (root / "link.txt").symlink_to("a.txt")
    return Workspace(root, ContentStore(tmp_path / "store"), DigestCache(tmp_path / "d.db"))


def _step(*inputs: str) -> StepPlan:
    return StepPlan("j.s", "j", "s", "true", inputs=inputs)


def test_plain_small_files_are_hashed_in_the_loop_with_the_stat_taken_once(
    workspace: Workspace,
) -> None:
    seen = small_inputs(workspace, _step("a.txt", "b.txt", "missing.txt"))
    assert seen is not None and sorted(seen) == ["a.txt", "b.txt"]  # missing: its error is quick
    assert seen["b.txt"].st_size == 2
    with_seen = workspace.resolve_inputs(["a.txt", "b.txt"], (), seen)
    assert with_seen == workspace.resolve_inputs(["a.txt", "b.txt"])


@pytest.mark.parametrize(
    "inputs", [("a.txt", "*.txt"), ("dir",), ("a.txt", "link.txt")], ids=["glob", "dir", "link"]
)
def test_what_can_hold_any_amount_is_hashed_off_the_loop(
    workspace: Workspace, inputs: tuple[str, ...]
) -> None:
    assert small_inputs(workspace, _step(*inputs)) is None


def test_files_over_the_limit_are_hashed_off_the_loop(workspace: Workspace) -> None:
    (workspace.root / "big.bin").write_bytes(b"\0" * INLINE_BYTES)
    assert small_inputs(workspace, _step("a.txt", "big.bin")) is None


def test_a_missing_input_is_still_an_error_of_the_key(workspace: Workspace) -> None:
    seen = small_inputs(workspace, _step("missing.txt"))
    assert seen == {}
    with pytest.raises(MissingInputError, match=r"missing\.txt does not exist"):
        workspace.resolve_inputs(["missing.txt"], (), seen)
