"""The ``[executors.spark]`` table as SparkConf text (no Spark needed)."""

from __future__ import annotations

import datetime

import pytest

from conveyor.errors import ProjectError
from conveyor.executors.spark.settings import SparkSettings


def test_conf_values_become_the_text_spark_reads() -> None:
    table = {
        "spark": {"executor": {"memory": "1g", "cores": 2}},  # unquoted keys: nested tables
        "spark.dynamicAllocation.enabled": True,
        "spark.speculation": False,
        "spark.memory.fraction": 0.6,
        "spark.custom.day": datetime.date(2026, 12, 2),
    }
    conf = SparkSettings.parse({"conf": table}).conf
    assert conf == {
        "spark.executor.memory": "1g",
        "spark.executor.cores": "2",
        "spark.dynamicAllocation.enabled": "true",
        "spark.speculation": "false",
        "spark.memory.fraction": "0.6",
        "spark.custom.day": "2026-12-02",
    }
    pairs = SparkSettings.parse({"conf": table, "master": "spark://h:7077"}).conf_pairs()
    assert pairs["spark.speculation"] == "false" and pairs["spark.master"] == "spark://h:7077"


@pytest.mark.parametrize("master", ["sc://host:15002", "SC://host", "sc://localhost/;token=x"])
def test_a_spark_connect_master_is_refused_before_spark_starts(master: str) -> None:
    """Spark Connect offers no SparkContext, which the executor runs its tasks through:
    one sentence from the settings, not Spark's own error after the JVM started."""
    with pytest.raises(ProjectError) as info:
        SparkSettings.parse({"master": master})
    message = str(info.value)
    assert "Spark Connect" in message and "executors.spark.master" in message
    assert "token" not in message  # the URL may hold a token: not repeated


def test_a_conf_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ProjectError, match="conf must be a table"):
        SparkSettings.parse({"conf": "spark.executor.memory=1g"})


_HOST, _BIND = "spark.driver.host", "spark.driver.bindAddress"


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[4]",
        "local[*]",
        "local-cluster[2,1,1024]",
        "spark://127.0.0.1:7077",
        "spark://127.0.0.2:7077",
        "spark://localhost:7077",
        "spark://[::1]:7077",
        "spark://127.0.0.1:7077,localhost:7078",
    ],
)
def test_a_local_or_loopback_master_gets_a_loopback_driver(master: str) -> None:
    pairs = SparkSettings.parse({"master": master}).conf_pairs()
    assert pairs[_HOST] == "127.0.0.1" and pairs[_BIND] == "127.0.0.1"


@pytest.mark.parametrize(
    "master",
    [
        "spark://10.0.0.5:7077",
        "spark://spark1.example.org:7077",
        "spark://127.0.0.1:7077,10.0.0.5:7077",
        "yarn",
        "k8s://https://k8s.example:6443",
        "mesos://10.0.0.5:5050",
    ],
)
def test_a_remote_master_leaves_the_driver_address_to_spark(master: str) -> None:
    pairs = SparkSettings.parse({"master": master}).conf_pairs()
    assert _HOST not in pairs and _BIND not in pairs
    assert pairs["spark.master"] == master


@pytest.mark.parametrize("master", ["local[2]", "spark://127.0.0.1:7077", "yarn"])
def test_a_driver_host_the_user_sets_is_kept(master: str) -> None:
    conf = {"spark.driver.host": "10.0.0.9"}
    pairs = SparkSettings.parse({"master": master, "conf": conf}).conf_pairs()
    # the bind address is then Spark's own default (the driver host), not loopback
    assert pairs[_HOST] == "10.0.0.9" and _BIND not in pairs


def test_a_bind_address_the_user_sets_is_kept() -> None:
    conf = {"spark.driver.bindAddress": "0.0.0.0"}
    pairs = SparkSettings.parse({"master": "local[2]", "conf": conf}).conf_pairs()
    assert pairs[_BIND] == "0.0.0.0" and _HOST not in pairs
