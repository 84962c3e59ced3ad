"""The local executor of a run is made when a step first uses it (a no-op run never loads
it); its settings are checked before the run starts, each bad one in one sentence."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.local import LocalExecutor
from conveyor.executors.registry import DeferredLocal, run_executor


def test_the_run_executor_of_local_is_deferred_with_the_same_defaults() -> None:
    deferred = run_executor("local", {"parallelism": 3})
    assert isinstance(deferred, DeferredLocal)
    assert deferred.default_parallelism == LocalExecutor({"parallelism": 3}).default_parallelism
    assert deferred.starts_containers is True and deferred.name == "local"
    assert run_executor("local", {}).default_parallelism == LocalExecutor({}).default_parallelism


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"parallelism": "many"}, "not a number"),
        ({"grace_seconds": [1]}, "not a number"),
        ({"sandbox": "yes"}, "sandbox setting must be a table"),
        ({"sandbox": {"hide": 3}}, "sandbox.hide setting must be a list"),
    ],
)
def test_bad_settings_are_refused_before_the_run(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ExecutorError, match=says) as caught:
        run_executor("local", settings)
    assert "\n" not in str(caught.value)
    with pytest.raises(ExecutorError, match=says):
        LocalExecutor(settings)  # the executor reads them the same way


def test_the_executor_is_made_at_its_first_use_only() -> None:
    """Asked its parallelism and closed, nothing is made (the integration test
    ``test_a_no_op_run_leaves_the_executor_modules_unloaded`` checks the modules); its first
    contract call makes the real one, which later calls reuse."""
    deferred = DeferredLocal({"parallelism": 2})
    assert deferred.default_parallelism == 2
    deferred.close()
    assert deferred._made is None
    assert deferred.capacity().slots == 2
    made = deferred._made
    assert isinstance(made, LocalExecutor) and made.default_parallelism == 2
    assert deferred.started([]) == [] and deferred._made is made
    deferred.close()
