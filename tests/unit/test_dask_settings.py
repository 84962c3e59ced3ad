"""The ``[executors.dask]`` table (no cluster needed)."""

from __future__ import annotations

import pytest

from conveyor.errors import ProjectError
from conveyor.executors.dask.settings import DEFAULT_SCHEDULER, DaskSettings


def test_the_default_scheduler_is_on_loopback() -> None:
    settings = DaskSettings.parse({})
    assert settings.scheduler == DEFAULT_SCHEDULER
    assert settings.scheduler.startswith("tcp://127.0.0.1:")


def test_values_are_read_as_their_types() -> None:
    settings = DaskSettings.parse(
        {"scheduler": "tls://dask.example.org:8786", "parallelism": "8", "grace_seconds": 1}
    )
    assert (settings.scheduler, settings.parallelism, settings.grace_seconds) == (
        "tls://dask.example.org:8786",
        8,
        1.0,
    )


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"schedular": "tcp://h:1"}, "unknown setting executors.dask.schedular"),
        ({"scheduler": "127.0.0.1:8786"}, "must be a scheduler address"),
        ({"scheduler": "/tmp/scheduler.json"}, "must be a scheduler address"),
        ({"parallelism": 0}, "must be positive"),
        ({"connect_timeout": "soon"}, "executors.dask:"),
    ],
)
def test_bad_settings_are_one_sentence(table: dict[str, object], says: str) -> None:
    """A scheme-less address would make dask's Client start a cluster of its own."""
    with pytest.raises(ProjectError, match=says) as info:
        DaskSettings.parse(table)
    assert "\n" not in str(info.value)
