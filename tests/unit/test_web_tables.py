"""Executor tables on the settings page: TOML in, the stored table back as TOML that
reads to the same table, and one sentence for text that is not TOML or too long."""

from __future__ import annotations

import pytest

from conveyor.errors import ConveyorError
from conveyor.server.web.tables import MAX_CHARS, read_table, toml_text


def test_a_table_written_for_the_form_reads_back_the_same() -> None:
    table = {
        "master": 'spark://h:7077 "quoted" \\ \u00e9',
        "parallelism": 4,
        "grace_seconds": 2.5,
        "flag": True,
        "conf": {"spark.executor.memory": "1g", "nested": {"a b": "c"}},
    }
    text = toml_text(table)
    assert 'conf."spark.executor.memory" = "1g"' in text
    assert read_table("spark", text) == table


def test_an_empty_form_field_removes_the_table() -> None:
    assert read_table("dask", " \n ") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("master = ", "the spark table is not TOML"),
        ("x" * (MAX_CHARS + 1), f"longer than {MAX_CHARS} characters"),
        ("a = 1\na = 2", "the spark table is not TOML"),
    ],
)
def test_text_that_is_not_a_table_is_one_sentence(text: str, says: str) -> None:
    with pytest.raises(ConveyorError, match=says) as caught:
        read_table("spark", text)
    assert "\n" not in str(caught.value)
