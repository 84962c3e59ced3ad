"""Datums packed into Spark tasks: pack sizes and the packs of a batch (no Spark needed)."""

from __future__ import annotations

import socket

import pytest

from conveyor.errors import ProjectError
from conveyor.executors.spark import packing, wire, worker
from conveyor.executors.spark.book import Book
from conveyor.executors.spark.channel import Channel, _Link
from conveyor.executors.spark.settings import SparkSettings


def test_auto_aims_at_a_few_tasks_per_core() -> None:
    assert packing.per_task(packing.AUTO, 1000, 2) == 167  # 6 tasks on 2 cores
    assert packing.per_task(packing.AUTO, 1000, 8) == 42  # 24 tasks
    assert packing.per_task(packing.AUTO, 5, 2) == 1  # a small batch: one task each
    assert packing.per_task(packing.AUTO, 7, 2) == 2
    assert packing.per_task(packing.AUTO, 7, 0) == 3  # cores unknown: counted as one


def test_a_given_size_wins_over_auto() -> None:
    assert packing.per_task(1, 1000, 2) == 1
    assert packing.per_task(50, 3, 2) == 50


def test_packs_keep_every_invocation_once_in_submission_order() -> None:
    sids = [str(i) for i in range(1, 11)]
    found = packing.packs(sids, 4)
    assert found == ["1,2,3,4", "5,6,7,8", "9,10"]
    assert [s for pack in found for s in pack.split(packing.SEPARATOR)] == sids
    assert packing.packs(sids, 1) == sids
    assert packing.packs([], 3) == []


def test_the_setting_is_auto_or_a_positive_whole_number() -> None:
    assert SparkSettings.parse({}).datums_per_task == packing.AUTO
    assert SparkSettings.parse({"datums_per_task": "auto"}).datums_per_task == packing.AUTO
    assert SparkSettings.parse({"datums_per_task": 25}).datums_per_task == 25
    for bad in (0, -3, "many", 2.5, True):
        with pytest.raises(ProjectError, match="datums_per_task"):
            SparkSettings.parse({"datums_per_task": bad})


def test_the_task_listener_port_can_be_pinned() -> None:
    assert SparkSettings.parse({}).task_port == 0  # any free port
    assert SparkSettings.parse({"task_port": 40020}).task_port == 40020
    for bad in (-1, 70000):
        with pytest.raises(ProjectError, match="task_port"):
            SparkSettings.parse({"task_port": bad})


def test_the_channel_listens_on_the_pinned_port() -> None:
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    channel = Channel(Book(cancel_wait=1.0), "token", 1.0, None)
    try:
        assert channel.open("127.0.0.1", free) == free
        socket.create_connection(("127.0.0.1", free), timeout=5).close()
    finally:
        channel.close()


def test_a_pack_goes_on_after_a_step_that_cannot_reach_the_driver() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    done = worker.run_pack(("127.0.0.1", closed), "token", "4,5,6")
    assert [sid for sid, _ in done] == ["4", "5", "6"]  # each tried, in order
    assert all(what.startswith("ConnectionRefusedError") for _, what in done), done


def test_a_cancel_reaches_only_the_invocation_it_names() -> None:
    """A task's connection carries its pack's invocations in turn: a cancel decided for
    one that has since ended must not stop the next one on the same connection."""
    task, driver = socket.socketpair()
    with task, driver:
        link = _Link(driver)
        link.sid = "2"  # 1 ended, 2 runs now
        link.stop("1")
        link.stop("2")
        task.settimeout(5)
        assert wire.recv(task) == {"t": "cancel", "sid": "2"}
        task.setblocking(False)
        with pytest.raises(BlockingIOError):
            task.recv(1)  # nothing else was sent
