"""Each reason the runner gives for not serving a step from the cache (``why`` shows it)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import StoreError
from conveyor.execute.reporting import SilentReporter
from conveyor.execute.runner import Runner, RunOptions
from conveyor.metadata.records import CacheEntry, OutputRecord, RunRecord, StepRunRecord
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.sdk.inspect import _MISS_TEXT

KEY = "f" * 64
STEP = StepPlan(id="j.s", job="j", name="s", command="true", outputs=("a.txt", "b.txt"))
BOTH = (OutputRecord("a.txt", "1" * 64), OutputRecord("b.txt", "2" * 64))


def _runner(tmp_path: Path, entry: CacheEntry | None, step: StepPlan = STEP, **opts: Any) -> Any:
    records = mock.Mock()
    records.cache_entries.return_value = {} if entry is None else {entry.fingerprint: entry}
    records.events.return_value = []
    workspace = mock.Mock()
    run = RunRecord("r2", "p", RunStatus.RUNNING, None, False, time.time())
    runner = Runner(
        run,
        ExecutionPlan("p", (), (step,)),
        {},
        "local",
        workspace,
        records,
        tmp_path,
        SilentReporter(),
        RunOptions(**opts),
    )
    if not runner.options.force:
        runner._cache = records.cache_entries([step.id])
    runner._scheduler.start()
    return runner


def _serve(runner: Any, step: StepPlan = STEP) -> tuple[str | None, StepRunRecord]:
    record = StepRunRecord("r2", step.id, step.job, StepStatus.RUNNING, fingerprint=KEY)
    return runner._serve_from_cache(step, record), record


def test_a_matching_entry_is_a_hit(tmp_path: Path) -> None:
    runner = _runner(tmp_path, CacheEntry(KEY, STEP.id, "r1", BOTH))
    miss, record = _serve(runner)
    assert miss is None
    assert record.cached and record.cached_from == "r1"
    runner.workspace.restore.assert_called_once_with(BOTH)


@pytest.mark.parametrize(
    ("entry", "opts", "step", "reason"),
    [
        (None, {}, STEP, "new-fingerprint"),
        (CacheEntry(KEY, "j.other", "r1", BOTH), {}, STEP, "new-fingerprint"),
        (CacheEntry(KEY, STEP.id, "r1", BOTH[:1]), {}, STEP, "outputs-differ"),
        (
            CacheEntry(KEY, STEP.id, "r1", (*BOTH, OutputRecord("c", "3" * 64))),
            {},
            STEP,
            "outputs-differ",
        ),
        (CacheEntry(KEY, STEP.id, "r1", BOTH), {"force": True}, STEP, "forced"),
        (
            CacheEntry(KEY, STEP.id, "r1", BOTH),
            {},
            replace(STEP, cache=False),
            "cache-disabled",
        ),
    ],
)
def test_each_miss_reason(
    tmp_path: Path, entry: CacheEntry | None, opts: dict[str, Any], step: StepPlan, reason: str
) -> None:
    runner = _runner(tmp_path, entry, step, **opts)
    miss, record = _serve(runner, step)
    assert miss == reason
    assert not record.cached
    runner.workspace.restore.assert_not_called()
    assert reason == "new-fingerprint" or reason in _MISS_TEXT


def test_outputs_gone_from_the_store(tmp_path: Path) -> None:
    runner = _runner(tmp_path, CacheEntry(KEY, STEP.id, "r1", BOTH))
    runner.workspace.restore.side_effect = StoreError("blob 1111 is missing")
    miss, record = _serve(runner)
    assert miss == "outputs-gone"
    assert not record.cached
