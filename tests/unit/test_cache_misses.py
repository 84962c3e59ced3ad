"""Each reason the cache gives for not serving a step (``why`` shows it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

import pytest

from conveyor.errors import StoreError
from conveyor.execute.cache import MISS_REASONS, CacheHit, CacheMiss, StepCache
from conveyor.metadata.records import CacheEntry, OutputRecord
from conveyor.plan.model import StepPlan
from conveyor.sdk.inspect import _MISS_TEXT

KEY = "f" * 64
STEP = StepPlan(id="j.s", job="j", name="s", command="true", outputs=("a.txt", "b.txt"))
BOTH = (OutputRecord("a.txt", "1" * 64), OutputRecord("b.txt", "2" * 64))


def _cache(entry: CacheEntry | None, force: bool = False) -> StepCache:
    return StepCache({} if entry is None else {entry.fingerprint: entry}, force)


def test_a_matching_entry_is_a_hit_and_restores_its_outputs() -> None:
    entry = CacheEntry(KEY, STEP.id, "r1", BOTH)
    cache = _cache(entry)
    decision = cache.lookup(STEP, KEY)
    assert decision == CacheHit(entry)
    workspace = mock.Mock()
    assert cache.restore(workspace, decision) == decision
    workspace.restore.assert_called_once_with(BOTH)


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
    entry: CacheEntry | None, opts: dict[str, Any], step: StepPlan, reason: str
) -> None:
    assert _cache(entry, **opts).lookup(step, KEY) == CacheMiss(reason)
    assert reason in MISS_REASONS
    assert reason == "new-fingerprint" or reason in _MISS_TEXT


def test_outputs_gone_from_the_store() -> None:
    cache = _cache(CacheEntry(KEY, STEP.id, "r1", BOTH))
    hit = cache.lookup(STEP, KEY)
    assert isinstance(hit, CacheHit)
    workspace = mock.Mock()
    workspace.restore.side_effect = StoreError("blob 1111 is missing")
    assert cache.restore(workspace, hit) == CacheMiss("outputs-gone")


def test_an_entry_added_in_the_run_serves_a_later_step() -> None:
    cache = _cache(None)
    entry = cache.add(KEY, STEP.id, "r2", list(BOTH))
    assert cache.lookup(STEP, KEY) == CacheHit(entry)
