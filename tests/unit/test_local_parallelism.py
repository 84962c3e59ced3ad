"""How many steps the local executor runs at once when neither ``-j`` nor the project's
``parallelism`` says: one per CPU core, as ``make -jN`` on this machine would."""

from __future__ import annotations

import os

import pytest

from conveyor.executors.local import LocalExecutor


def test_the_local_executor_defaults_to_one_step_per_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert LocalExecutor().default_parallelism == 3
    assert LocalExecutor({"parallelism": 0}).default_parallelism == 3  # 0: the default


def test_a_parallelism_setting_overrides_the_core_count() -> None:
    assert LocalExecutor({"parallelism": 2}).default_parallelism == 2
