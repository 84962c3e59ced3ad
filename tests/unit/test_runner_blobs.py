"""No records write names a blob the store does not hold (a kill between two writes of
the records leaves only outputs that can be restored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus
from conveyor.metadata.repository import WriteBatch
from tests.unit.test_runner import MAKE, USE, Harness


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _recorded_blobs(batch: WriteBatch) -> list[str]:
    """The blobs a batch names: outputs of succeeded steps and of cache entries."""
    named = [
        o.digest for r in batch.step_runs.values() if r.status == "succeeded" for o in r.outputs
    ]
    return named + [o.digest for e in batch.cache_entries for o in e.outputs]


def test_no_record_names_a_blob_before_it_is_stored(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    missing: list[str] = []
    write = type(harness.records).write

    def checked(self: Any, batch: WriteBatch) -> None:
        named = _recorded_blobs(batch)
        seen.extend(named)
        missing.extend(d for d in named if not harness.store.has(d))
        write(self, batch)

    monkeypatch.setattr(type(harness.records), "write", checked)
    status, steps, _, _ = harness.run(MAKE, USE)
    assert status == RunStatus.SUCCEEDED
    assert len(steps) == 2 and len(set(seen)) == 2 and missing == []
