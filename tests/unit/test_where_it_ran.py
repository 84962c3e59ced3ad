"""Where a step ran: what a Spark task says of itself, checked before it is shown, and
the step page's line from the step's events (the last attempt's start and end)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.executors.spark.channel import describe
from conveyor.executors.spark.worker import whereabouts
from conveyor.metadata.records import EventRecord
from conveyor.server.web.views import where_it_ran


def test_a_task_is_described_by_its_ids_executor_and_host() -> None:
    told = {"task": 7, "stage": 2, "partition": 1, "attempt": 0, "executor": "0", "host": "w1"}
    assert describe(told) == {
        "task": "7",
        "stage": "2",
        "partition": "1",
        "attempt": "0",
        "executor": "0",
        "host": "w1",
    }


@pytest.mark.parametrize(
    ("told", "shown"),
    [
        (None, None),
        ("task 7", None),
        ({}, None),
        ({"task": "7; rm -rf /", "host": "w1"}, {"host": "w1"}),
        ({"task": True, "stage": -1, "partition": 2**70}, None),
        ({"task": 3, "host": "x" * 201}, {"task": "3"}),
        ({"task": 3, "host": "w1\n<script>"}, {"task": "3"}),
        ({"task": 3, "executor": ["0"]}, {"task": "3"}),
    ],
)
def test_what_a_task_says_is_checked_before_it_is_shown(told: Any, shown: Any) -> None:
    assert describe(told) == shown


def test_outside_a_spark_task_only_the_host_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_LOG_URL_STDERR", raising=False)
    found = whereabouts()
    assert set(found) <= {"host", "stage", "partition", "attempt", "task"}
    assert isinstance(found["host"], str) and found["host"]
    url = "http://127.0.0.1:8081/logPage/?appId=app-1&executorId=4&logType=stderr"
    monkeypatch.setenv("SPARK_LOG_URL_STDERR", url)
    assert whereabouts()["executor"] == "4"


def _event(kind: str, step: str, **data: Any) -> EventRecord:
    return EventRecord("r1", kind, 0.0, step, data)


def test_the_page_shows_the_last_attempts_executor_and_where_it_ran() -> None:
    events = [
        _event("step-started", "a", executor="spark", backend_id="conveyor-ab/1"),
        _event("step-finished", "a", status="failed", ran_on={"task": "0", "host": "w1"}),
        _event("step-started", "b", executor="local", backend_id="99"),
        _event("step-finished", "b", status="succeeded"),
        _event("step-started", "a", executor="spark", backend_id="conveyor-ab/2"),
    ]
    assert where_it_ran(events, "a") == "spark (conveyor-ab/2)"  # the retry still runs
    ran_on = {"task": "1", "executor": "0", "host": "w1"}
    events.append(_event("step-finished", "a", status="succeeded", ran_on=ran_on))
    assert where_it_ran(events, "a") == "spark (conveyor-ab/2): task 1, executor 0, host w1"
    assert where_it_ran(events, "b") == "local (99)"
    assert where_it_ran(events, "c") is None
