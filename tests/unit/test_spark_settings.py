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


def test_a_conf_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ProjectError, match="conf must be a table"):
        SparkSettings.parse({"conf": "spark.executor.memory=1g"})
