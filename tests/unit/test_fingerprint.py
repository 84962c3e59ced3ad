"""The step cache key: deterministic, sensitive to every part, and explainable."""

from __future__ import annotations

import copy
import json
from typing import Any

import blake3
import pytest

from conveyor.plan.fingerprint import (
    FINGERPRINT_VERSION,
    PART_NAMES,
    explain_change,
    fingerprint,
    fingerprint_parts,
    keyed,
)

D1 = "1" * 64
D2 = "2" * 64
D3 = "3" * 64


def base_parts(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "command": "python train.py --lr 0.1",
        "env": {"MODE": "fast", "SEED": "1"},
        "params": {"lr": 0.1, "epochs": 3},
        "inputs": {"data/raw.csv": D1, "src/train.py": D2},
        "upstream": {"prep.clean": {"data/clean.csv": D3}},
        "environment": "py3.11-lock-abc",
        "executor_key": "local",
    }
    args.update(overrides)
    return fingerprint_parts(**args)


def test_parts_hold_every_named_part_and_the_version() -> None:
    parts = base_parts()
    assert set(PART_NAMES) <= set(parts)
    assert parts["version"] == FINGERPRINT_VERSION


def test_fingerprint_is_a_blake3_hex_digest() -> None:
    key = fingerprint(base_parts())
    assert len(key) == 64
    int(key, 16)
    canonical = json.dumps(base_parts(), sort_keys=True, separators=(",", ":"))
    assert key == blake3.blake3(canonical.encode()).hexdigest()


def test_fingerprint_is_deterministic_and_ignores_mapping_order() -> None:
    first = fingerprint(base_parts())
    assert fingerprint(base_parts()) == first
    reordered = base_parts(
        env={"SEED": "1", "MODE": "fast"},
        params={"epochs": 3, "lr": 0.1},
        inputs={"src/train.py": D2, "data/raw.csv": D1},
    )
    assert fingerprint(reordered) == first
    assert fingerprint(copy.deepcopy(base_parts())) == first


@pytest.mark.parametrize(
    "overrides",
    [
        {"command": "python train.py --lr 0.2"},
        {"command": "python train.py --lr 0.1 "},
        {"env": {"MODE": "slow", "SEED": "1"}},
        {"env": {"MODE": "fast"}},
        {"env": {"MODE": "fast", "SEED": "1", "EXTRA": ""}},
        {"params": {"lr": 0.2, "epochs": 3}},
        {"params": {"lr": "0.1", "epochs": 3}},  # a string is not the float
        {"params": {"lr": 0.1}},
        {"inputs": {"data/raw.csv": D3, "src/train.py": D2}},
        {"inputs": {"data/other.csv": D1, "src/train.py": D2}},
        {"inputs": {"data/raw.csv": D1}},
        {"upstream": {"prep.clean": {"data/clean.csv": D1}}},
        {"upstream": {"prep.other": {"data/clean.csv": D3}}},
        {"upstream": {}},
        {"environment": "py3.12-lock-abc"},
        {"executor_key": "htcondor"},
    ],
)
def test_fingerprint_changes_when_any_part_changes(overrides: dict[str, Any]) -> None:
    assert fingerprint(base_parts(**overrides)) != fingerprint(base_parts())


def test_fingerprint_changes_with_the_format_version() -> None:
    parts = base_parts()
    parts["version"] = FINGERPRINT_VERSION + 1
    assert fingerprint(parts) != fingerprint(base_parts())


def test_no_change_explains_nothing() -> None:
    assert explain_change(base_parts(), base_parts()) == []


def test_explain_command() -> None:
    assert explain_change(base_parts(), base_parts(command="make")) == ["the command changed"]


def test_explain_env_var_changed_added_removed() -> None:
    after = base_parts(env={"MODE": "slow", "NEW": "x"})
    assert explain_change(base_parts(), after) == [
        "environment variable MODE changed ('fast' -> 'slow')",
        "environment variable NEW was added",
        "environment variable SEED was removed",
    ]


def test_explain_param() -> None:
    after = base_parts(params={"lr": 0.01, "epochs": 3})
    assert explain_change(base_parts(), after) == ["parameter lr changed (0.1 -> 0.01)"]


def test_explain_input_names_the_path_and_short_digests() -> None:
    after = base_parts(inputs={"data/raw.csv": D3, "src/train.py": D2})
    (change,) = explain_change(base_parts(), after)
    assert change == f"input data/raw.csv changed ({D1[:12]} -> {D3[:12]})"


def test_explain_input_added_and_removed() -> None:
    after = base_parts(inputs={"src/train.py": D2, "data/new.csv": D3})
    assert explain_change(base_parts(), after) == [
        "input data/new.csv was added",
        "input data/raw.csv was removed",
    ]


def test_explain_upstream_output() -> None:
    after = base_parts(upstream={"prep.clean": {"data/clean.csv": D1}})
    (change,) = explain_change(base_parts(), after)
    assert "data/clean.csv" in change
    assert "prep.clean" in change
    assert D3[:12] in change and D1[:12] in change


def test_explain_upstream_step_added() -> None:
    after = base_parts(
        upstream={"prep.clean": {"data/clean.csv": D3}, "prep.more": {"more.csv": D1}}
    )
    (change,) = explain_change(base_parts(), after)
    assert "more.csv" in change and "added" in change and "prep.more" in change


def test_explain_environment() -> None:
    (change,) = explain_change(base_parts(), base_parts(environment="other"))
    assert "environment" in change


def test_explain_executor() -> None:
    (change,) = explain_change(base_parts(), base_parts(executor_key="spark"))
    assert "executor" in change


def test_explain_version() -> None:
    after = base_parts()
    after["version"] = FINGERPRINT_VERSION + 1
    (change,) = explain_change(base_parts(), after)
    assert "format" in change


def test_explain_lists_several_changes_in_a_stable_order() -> None:
    after = base_parts(command="make", params={"lr": 0.1, "epochs": 4}, environment="x")
    changes = explain_change(base_parts(), after)
    assert changes[0] == "the command changed"
    assert changes[1] == "parameter epochs changed (3 -> 4)"
    assert "environment" in changes[2]
    assert len(changes) == 3


def test_explain_tolerates_parts_from_an_older_record() -> None:
    # a record may lack a part (e.g. written before it existed)
    before = {k: v for k, v in base_parts().items() if k != "executor"}
    changes = explain_change(before, base_parts())
    assert changes == ["the executor settings changed"]


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"command": "other"}, "command"),
        ({"env": {"MODE": "x", "SEED": "1"}}, "MODE"),
        ({"params": {"lr": 1, "epochs": 3}}, "lr"),
        ({"inputs": {"data/raw.csv": D1, "src/train.py": D3}}, "src/train.py"),
        ({"upstream": {"prep.clean": {"data/clean.csv": D2}}}, "prep.clean"),
        ({"environment": "new"}, "environment"),
    ],
)
def test_every_fingerprint_change_is_explained(overrides: dict[str, Any], word: str) -> None:
    after = base_parts(**overrides)
    assert fingerprint(after) != fingerprint(base_parts())
    changes = explain_change(base_parts(), after)
    assert len(changes) == 1
    assert word in changes[0]


def test_the_run_status_keys_only_steps_that_can_see_it() -> None:
    from conveyor.plan.fingerprint import step_parts
    from conveyor.plan.model import StepPlan

    def key(step: StepPlan, failed: bool) -> str:
        return fingerprint(
            step_parts(step, inputs={}, upstream={}, environment="e", failed_so_far=failed)
        )

    plain = StepPlan(id="j.s", job="j", name="s", command="true")
    assert key(plain, False) == key(plain, True)
    for seeing in (
        StepPlan(id="j.s", job="j", name="s", command="true", policy="always"),
        StepPlan(id="j.s", job="j", name="s", command="true", status_env=("STATUS",)),
    ):
        assert key(seeing, False) != key(seeing, True)
        before = step_parts(seeing, inputs={}, upstream={}, environment="e")
        after = step_parts(seeing, inputs={}, upstream={}, environment="e", failed_so_far=True)
        assert explain_change(before, after) == [
            "the run status so far changed (success -> failure)"
        ]


def test_declaring_an_output_as_metrics_changes_the_key_and_why_says_so() -> None:
    plain = base_parts(outputs=["out/m.json"])
    metrics = base_parts(outputs=["out/m.json"], metrics=["out/m.json"])
    assert "metrics" not in plain  # keys of steps without metrics stay as they were
    assert fingerprint(plain) != fingerprint(metrics)
    assert explain_change(plain, metrics) == ["metrics file out/m.json was added"]


def test_the_keyed_text_is_canonical_json_of_any_value() -> None:
    """The text a key digests is ``json.dumps`` with sorted keys and no spaces: the keys
    of earlier runs stay valid whatever encoder makes it."""
    parts = base_parts(
        command="echo 'é' \u2603 \"q\" \\ \n\t",
        env={"Z": "1", "A": "ß"},
        params={"f": 0.1, "big": 10**20, "neg": -3, "nan": float("nan"), "t": True, "n": None},
        inputs={"b/x": "d1", "a/y": "d2"},
        upstream={"s2": {"o": "d"}, "s1": {}},
    )
    parts["extra"] = {"tuple": (1, "x"), "nested": [{"b": 1, "a": [None, 1.5]}]}
    parts["unencodable"] = {1, 2} - {1}  # a set: written as its str, as default=str says
    digest, text = keyed(parts)
    expected = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    assert text == expected
    assert digest == blake3.blake3(expected.encode()).hexdigest()
