"""Experiment tracking without processes: metrics files read like DVC reads them, the
tracking log a step's ``conveyor.log_*`` calls write, diffs and comparisons of runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import conveyor
from conveyor.domain.tracking import LOG_NAME, TRACKING_ENV, tracking_path
from conveyor.execute.cache import CacheHit, StepCache
from conveyor.metadata.records import CacheEntry, OutputRecord
from conveyor.plan.model import StepPlan
from conveyor.sdk.metricfiles import (
    MAX_KEYS,
    MetricsFileError,
    metrics_format,
    parse_metrics,
    parse_tracking,
)
from conveyor.sdk.tracking import diff, rows
from conveyor.tracking import MAX_LOG_BYTES, TrackingError


# -- metrics files ---------------------------------------------------------------------
def test_nested_json_becomes_dotted_keys_and_lists_are_indexed() -> None:
    data = {"train": {"loss": 0.25, "acc": 0.9}, "n": 3, "ok": True, "scores": [1, {"x": 2}]}
    assert parse_metrics("out/m.json", json.dumps(data).encode()) == {
        "train.loss": 0.25,
        "train.acc": 0.9,
        "n": 3,
        "ok": True,
        "scores.0": 1,
        "scores.1.x": 2,
    }


def test_yaml_reads_like_json() -> None:
    text = b"train:\n  loss: 0.5\n  name: small\nepochs: 10\n"
    assert parse_metrics("m.yaml", text) == {"train.loss": 0.5, "train.name": "small", "epochs": 10}


@pytest.mark.parametrize(("name", "sep"), [("h.csv", ","), ("h.tsv", "\t")])
def test_a_table_gives_its_last_row_with_numbers_as_numbers(name: str, sep: str) -> None:
    text = sep.join(["epoch", "loss", "note"]) + "\n"
    text += sep.join(["1", "0.9", "warm"]) + "\n" + sep.join(["2", "0.4", "done"]) + "\n"
    assert parse_metrics(name, text.encode()) == {"epoch": 2, "loss": 0.4, "note": "done"}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("m.json", b"{not json", "is not JSON"),
        ("m.json", b"[1, 2]", "not a mapping"),
        ("m.json", b'{"a": NaN}', "NaN is not a JSON number"),
        ("m.json", b"\xff\xfe\x00", "is not UTF-8"),
        ("m.yaml", b"a: [1, 2\n", "is not YAML"),
        ("m.yaml", b"!!python/object:os.system {}\n", "is not YAML"),
        ("m.csv", b"a,b\n", "header row and at least one row"),
        ("m.csv", b"a,b\n1,2,3\n", "3 values for 2 columns"),
    ],
)
def test_a_bad_metrics_file_gives_one_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(MetricsFileError, match=reason):
        parse_metrics(name, data)


def test_the_format_is_the_suffix_and_json_otherwise() -> None:
    assert [metrics_format(p) for p in ("a.JSON", "b.yml", "c.tsv", "d.metrics", "e")] == [
        "json",
        "yaml",
        "tsv",
        "json",
        "json",
    ]


def test_a_file_with_too_many_values_is_refused() -> None:
    data = json.dumps({f"k{i}": i for i in range(MAX_KEYS + 1)}).encode()
    with pytest.raises(MetricsFileError, match="more than"):
        parse_metrics("m.json", data)


# -- the tracking log ------------------------------------------------------------------
def test_log_calls_inside_a_step_append_lines_the_reader_takes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv(TRACKING_ENV, tracking_path("train.fit"))
    (tmp_path / "model.bin").write_bytes(b"weights")
    conveyor.log_metric("auc", 0.5)
    conveyor.log_metric("auc", 0.91)  # the last value wins
    conveyor.log_param("depth", 5)
    conveyor.log_artifact(tmp_path / "model.bin")
    where = tmp_path / tracking_path("train.fit")
    assert (where / "artifacts" / "model.bin").read_bytes() == b"weights"
    log = parse_tracking((where / LOG_NAME).read_bytes())
    assert (log.metrics, log.params, log.artifacts) == ({"auc": 0.91}, {"depth": 5}, ["model.bin"])


def test_outside_a_run_the_calls_record_nothing_and_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(RuntimeWarning, match="outside a Conveyor run"):
        conveyor.log_metric("auc", 0.9)
        conveyor.log_param("lr", 0.1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.9", True, None])
def test_a_metric_is_a_finite_number(value: object) -> None:
    with pytest.raises(TrackingError, match="finite number"):
        conveyor.log_metric("auc", value)  # type: ignore[arg-type]


def test_names_are_short_single_lines() -> None:
    with pytest.raises(TrackingError, match="1 to 200 characters"):
        conveyor.log_param("a\nb", 1)


def test_the_log_stops_growing_at_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv(TRACKING_ENV, "t")
    (tmp_path / "t").mkdir()
    with open(tmp_path / "t" / LOG_NAME, "wb") as log:
        log.truncate(MAX_LOG_BYTES - 10)
    with pytest.raises(TrackingError, match="would pass"):
        conveyor.log_metric("auc", 0.9)
    assert (tmp_path / "t" / LOG_NAME).stat().st_size == MAX_LOG_BYTES - 10


def test_a_line_that_is_not_ours_is_named() -> None:
    with pytest.raises(MetricsFileError, match="line 2"):
        parse_tracking(b'{"kind": "metric", "name": "a", "value": 1}\nrubbish\n')


# -- the cache serves steps whether they wrote a tracking log or not -------------------
def test_a_cache_entry_with_the_tracking_directory_still_serves_the_step() -> None:
    step = StepPlan(id="j.s", job="j", name="s", command="true", outputs=("a.txt",))
    held = (OutputRecord("a.txt", "1" * 64), OutputRecord(tracking_path("j.s"), "2" * 64, "tree"))
    entry = CacheEntry("f" * 64, "j.s", "r1", held)
    assert StepCache({entry.fingerprint: entry}, False).lookup(step, "f" * 64) == CacheHit(entry)


# -- diffs and comparisons -------------------------------------------------------------
def test_a_diff_lists_changed_added_and_removed_values_with_their_change() -> None:
    old = {"m.json": {"loss": 0.5, "acc": 0.8, "gone": 1}, "log:s": {"auc": 0.7}}
    new = {"m.json": {"loss": 0.25, "acc": 0.8, "new": "x"}, "log:s": {"auc": 0.7}}
    changes = {(c.source, c.key): c for c in diff(old, new)}
    assert sorted(changes) == [("m.json", "gone"), ("m.json", "loss"), ("m.json", "new")]
    assert changes["m.json", "loss"].delta == -0.25
    assert changes["m.json", "gone"].to_json()["only_in"] == "old"
    assert changes["m.json", "new"].to_json() == {
        "source": "m.json",
        "key": "new",
        "old": None,
        "new": "x",
        "delta": None,
        "only_in": "new",
    }
    assert len(diff(old, new, show_all=True)) == 5


def test_a_value_that_changes_type_is_a_change() -> None:
    assert [c.key for c in diff({"s": {"a": 1}}, {"s": {"a": True}})] == ["a"]


def test_rows_line_values_up_across_runs_and_say_which_differ() -> None:
    found = rows([{"run": {"lr": 0.1, "d": 3}}, {"run": {"lr": 0.2, "d": 3}}, {}])
    assert [(r.key, r.values, r.differs) for r in found] == [
        ("d", (3, 3, None), True),
        ("lr", (0.1, 0.2, None), True),
    ]
    assert not rows([{"s": {"a": 1}}, {"s": {"a": 1}}])[0].differs
