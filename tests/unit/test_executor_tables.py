"""The executor tables a lead stores on the server are checked as a run reads them:
each bad table is refused with one sentence naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import ConveyorError
from conveyor.server.executor_tables import MAX_KEYS, MAX_TEXT, check_tables


def test_good_tables_pass() -> None:
    check_tables(
        {
            "spark": {"master": "spark://127.0.0.1:7077", "conf": {"spark.cores.max": "1"}},
            "htcondor": {"collector": "127.0.0.1:9618", "poll_interval": 1},
            "dask": {"scheduler": "tcp://127.0.0.1:8786", "parallelism": 8},
            "local": {},
        }
    )


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        ({"spark": {"mastr": "local"}}, "unknown setting executors.spark.mastr"),
        ({"htcondor": {"colector": "h"}}, "unknown setting executors.htcondor.colector"),
        ({"dask": {"scheduler": "/tmp/sock"}}, "executors.dask.scheduler must be"),
        ({"dask": {"parallelism": "many"}}, "executors.dask"),
        ({"spark": {"master": ["a"]}}, "executors.spark.master is a list"),
        ({"spark": "local"}, "executors.spark must be a table"),
        ({"local": {"sandbox": None}}, "executors.local.sandbox is null"),
        ({"spark": {"grace_seconds": float("nan")}}, "executors.spark.grace_seconds is nan"),
        ({"dask": {"connect_timeout": float("inf")}}, "must be finite"),
        ({"spark": {"master": "x" * (MAX_TEXT + 1)}}, "longer than"),
        ({"spark": {"conf": {f"k{i}": "v" for i in range(MAX_KEYS + 1)}}}, "more than"),
        ({"spark": {"conf": {"a": {"b": {"c": {"d": "e"}}}}}}, "nests tables too deep"),
        ({f"x{i}": {} for i in range(17)}, "at most 16 executor tables"),
    ],
)
def test_a_bad_table_is_one_sentence(tables: dict[str, Any], says: str) -> None:
    with pytest.raises(ConveyorError, match=says) as caught:
        check_tables(tables)
    assert "\n" not in str(caught.value)
