"""The blobs of small outputs, written after the next steps start when a core is spare
(``-j`` below the core count) and in turn otherwise: either way what a step wrote is what
is stored, and no record names a blob the store does not hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute import runner as runner_module
from conveyor.executors.base import Handle, Invocation
from conveyor.metadata.repository import WriteBatch
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import hash_bytes
from tests.unit.fakes import FakeExecutor
from tests.unit.test_runner import MAKE, USE, Harness

WRITTEN = b"j.make attempt 1\n"
"""What the fake executor writes to j.make's output."""


@pytest.fixture(params=[True, False], ids=["later", "in-turn"])
def later(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether blobs are written after the next steps start: -j 1 on 2 cores, or on 1."""
    cores = 2 if request.param else 1
    monkeypatch.setattr(runner_module, "_cores", lambda: cores)
    return bool(request.param)


@pytest.fixture
def harness(tmp_path: Path, later: bool) -> Harness:
    return Harness(tmp_path)


def _recorded_blobs(batch: WriteBatch) -> list[str]:
    """The blobs a batch names: outputs of succeeded steps and of cache entries."""
    named = [
        o.digest for r in batch.step_runs.values() if r.status == "succeeded" for o in r.outputs
    ]
    return named + [o.digest for e in batch.cache_entries for o in e.outputs]


def test_a_dependant_that_rewrites_its_input_leaves_the_stored_output_as_written(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, later: bool
) -> None:
    """The attack: j.use overwrites out/a.txt as soon as it starts, before the loop has
    written j.make's blob (when it is left for later). The blob holds what j.make wrote."""
    seen: dict[str, bool] = {}
    submit = FakeExecutor.submit

    def rewriting(self: FakeExecutor, invocation: Invocation) -> Handle:
        handle = submit(self, invocation)
        if invocation.env["CONVEYOR_STEP_ID"] == "j.use":
            seen["blob stored before the rewrite"] = harness.store.has(hash_bytes(WRITTEN))
            Path(invocation.workdir, "out/a.txt").write_bytes(b"rewritten by j.use\n")
        return handle

    monkeypatch.setattr(FakeExecutor, "submit", rewriting)
    status, steps, _, _ = harness.run(MAKE, USE)
    assert status == RunStatus.SUCCEEDED
    digest = steps["j.make"].outputs[0].digest
    assert seen == {"blob stored before the rewrite": not later}
    assert digest == hash_bytes(WRITTEN)
    assert harness.store.read_bytes(digest) == WRITTEN
    assert (harness.project / "out/a.txt").read_bytes() == b"rewritten by j.use\n"


def test_no_record_names_a_blob_before_it_is_stored(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between two writes of the records leaves only what the store holds."""
    missing: list[str] = []
    write = type(harness.records).write

    def checked(self: Any, batch: WriteBatch) -> None:
        missing.extend(d for d in _recorded_blobs(batch) if not harness.store.has(d))
        write(self, batch)

    monkeypatch.setattr(type(harness.records), "write", checked)
    chain = [MAKE, USE]
    status, steps, _, _ = harness.run(*chain)
    assert status == RunStatus.SUCCEEDED
    assert len(steps) == 2 and missing == []


def test_a_blob_that_cannot_be_written_fails_the_run_and_names_nothing_missing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, later: bool
) -> None:
    def full_disk(self: ContentStore, data: bytes, digest: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ContentStore, "_write", full_disk)
    status, steps, _, runner = harness.run(MAKE, USE)
    assert status == RunStatus.FAILED
    make = steps["j.make"]
    assert make.status == StepStatus.FAILED and make.outputs == []
    assert make.error == "cannot store the output out/a.txt: No space left on device"
    # left for later, the failure ends the run (its dependants may have started);
    # in turn it fails the step alone, before any dependant starts, as any store does
    assert runner.run.error == (make.error if later else None)
    assert steps["j.use"].status == (StepStatus.CANCELLED if later else StepStatus.SKIPPED)
    entries = harness.records.cache_entries(["j.make", "j.use"])
    assert all(harness.store.has(o.digest) for e in entries.values() for o in e.outputs)
    assert "j.make" not in {e.step_id for e in entries.values()}
