"""The plan's JSON (``conveyor plan --json``, the plan cache): every field of a step
survives the trip through JSON text, the printed shape stays as documented, and a file
of the wrong shape is refused (the plan cache then compiles again)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.conditions import Condition
from conveyor.domain.types import Resources
from conveyor.metadata.records import OutputRecord
from conveyor.plan.model import ExecutionPlan, ServicePlan, StepPlan
from conveyor.sdk.inspect import Explanation
from conveyor.sdk.retention import DeleteResult

WORD = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
TEXT = st.text(max_size=12)
JSON_SCALAR = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | TEXT
JSON_VALUE = JSON_SCALAR | st.lists(JSON_SCALAR, max_size=3)


def pairs(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    return st.dictionaries(WORD, values, max_size=3).map(lambda d: tuple(d.items()))


def words() -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(WORD, max_size=3).map(tuple)


FLOAT = st.floats(0.5, 1e6, allow_nan=False).map(lambda f: float(round(f, 3)))
OPTIONAL_TEXT = st.none() | TEXT

# one strategy per field, drawn independently (the JSON must not rely on combinations)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": TEXT,
    "job": TEXT,
    "name": TEXT,
    "command": TEXT,
    "env": pairs(TEXT),
    "policy": st.sampled_from(["success", "failure", "always"]),
    "timeout": st.none() | FLOAT,
    "queue_timeout": st.none() | FLOAT,
    "retries": st.integers(0, 9),
    "inputs": words(),
    "optional_inputs": words(),
    "unkeyed_inputs": words(),
    "outputs": words(),
    "metrics": words(),
    "cache": st.booleans(),
    "needs": words(),
    "params": pairs(JSON_VALUE),
    "matrix": pairs(JSON_VALUE),
    "resources": st.builds(
        Resources,
        cpus=FLOAT,
        memory_mb=st.none() | st.integers(1, 10**6),
        gpus=st.integers(0, 8),
        disk_mb=st.none() | st.integers(1, 10**6),
    ),
    "executor": OPTIONAL_TEXT,
    "options": pairs(TEXT),
    "image": OPTIONAL_TEXT,
    "pull": OPTIONAL_TEXT,
    "secrets": pairs(TEXT),
    "status_env": words(),
    "allow_failure": st.booleans(),
    "volumes": st.lists(st.tuples(WORD, WORD.map(lambda w: "/" + w)), max_size=2).map(tuple),
    "host_volumes": st.lists(st.tuples(WORD, WORD), max_size=1).map(tuple),
    "privileged": st.booleans(),
    "ci": st.none() | st.sampled_from(["drone", "dotscience"]),
    "notebook": st.none() | TEXT,
    "conditions": st.lists(
        st.builds(Condition, st.sampled_from(["job", "step"]), WORD, words(), words()), max_size=3
    ).map(tuple),
    "action": OPTIONAL_TEXT,
    "action_commit": OPTIONAL_TEXT,
    "action_inputs": pairs(JSON_VALUE),
    "action_outputs": words(),
    "action_rules": st.none() | st.just("datatorch"),
    "action_types": pairs(TEXT),
}
STEPS = st.fixed_dictionaries(FIELDS).map(lambda values: StepPlan(**values))


def through_text(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(data))
    return result


def test_the_strategy_draws_every_field_of_a_step() -> None:
    # a new StepPlan field must be drawn here too, so the round trip covers it
    assert set(FIELDS) == {f.name for f in fields(StepPlan)}


@given(STEPS)
def test_a_step_round_trips_through_json_text(step: StepPlan) -> None:
    assert StepPlan.from_json(through_text(step.to_json())) == step


SERVICES = st.builds(
    ServicePlan,
    name=TEXT,
    job=TEXT,
    image=st.none() | TEXT,
    command=TEXT,
    env=pairs(TEXT),
    pull=st.none() | TEXT,
    ci=st.none() | TEXT,
)


@given(
    st.lists(STEPS, max_size=3),
    pairs(JSON_VALUE),
    st.lists(st.tuples(TEXT, TEXT, TEXT)),
    st.lists(SERVICES, max_size=2),
    st.none() | st.integers(1, 9),
    pairs(TEXT),
)
def test_a_plan_round_trips_through_json_text(
    steps: list[StepPlan],
    params: tuple[tuple[str, Any], ...],
    inferred: list[Any],
    services: list[ServicePlan],
    concurrency: int | None,
    datasets: tuple[tuple[str, str], ...],
) -> None:
    plan = ExecutionPlan(
        "p", params, tuple(steps), tuple(inferred), tuple(services), concurrency, datasets
    )
    assert ExecutionPlan.from_json(through_text(plan.to_json())) == plan


def test_an_unset_step_prints_the_native_fields_only() -> None:
    data = StepPlan(id="a.b", job="a", name="b", command="true").to_json()
    expected = {
        "id": "a.b",
        "job": "a",
        "name": "b",
        "command": "true",
        "env": {},
        "if": "success()",
        "timeout": None,
        "retries": 0,
        "inputs": [],
        "outputs": [],
        "cache": True,
        "needs": [],
        "params": {},
        "matrix": {},
        "resources": {"cpus": 1.0, "memory_mb": None, "gpus": 0, "disk_mb": None},
        "executor": None,
        "options": {},
    }
    assert data == expected
    assert list(data) == list(expected)  # printed in this order


def test_set_extras_print_after_the_native_fields() -> None:
    step = StepPlan(
        id="a.b",
        job="a",
        name="b",
        command="",
        optional_inputs=("x",),
        image="alpine",
        allow_failure=True,
        action="./act",
        action_inputs=(("k", 1),),
    )
    data = step.to_json()
    assert list(data)[-4:] == ["optional_inputs", "image", "allow_failure", "action"]
    assert data["action"] == {"ref": "./act", "commit": None, "inputs": {"k": 1}, "outputs": []}
    plan = ExecutionPlan("p", (), (step,), (("a.b", "z.y", "f"),))
    assert plan.to_json()["inferred_needs"] == [{"step": "a.b", "needs": "z.y", "path": "f"}]


@pytest.mark.parametrize(
    ("key", "value"),
    [("if", "sometimes()"), ("retries", "three"), ("inputs", "x"), ("resources", [])],
)
def test_a_step_of_the_wrong_shape_is_refused(key: str, value: Any) -> None:
    data = StepPlan(id="a.b", job="a", name="b", command="true").to_json()
    data[key] = value
    with pytest.raises(ValueError):
        StepPlan.from_json(data)


def test_results_of_other_commands_print_through_the_same_writer() -> None:
    assert Explanation("a.s", "r1", "miss", ["x"]).to_json() == {
        "step": "a.s",
        "run": "r1",
        "verdict": "miss",
        "reasons": ["x"],
    }
    assert DeleteResult(["r1"], 2).to_json() == {
        "deleted": ["r1"],
        "kept": 2,
        "protected": {},
        "dry_run": False,
    }
    assert OutputRecord("out/a", "d" * 64).to_json() == {
        "path": "out/a",
        "digest": "d" * 64,
        "kind": "file",
        "size": 0,
    }
