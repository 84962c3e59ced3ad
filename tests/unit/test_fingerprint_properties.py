"""Properties of the cache key, through the real loader and compiler.

A step spec is drawn, written as YAML text, loaded and compiled as ``conveyor run`` does;
its key is the fingerprint of the compiled step with fixed input contents and secret
values. Every change to a field that decides what the step makes changes the key; key
order, comments and fields that decide only how it runs (timeout, retries) do not."""

from __future__ import annotations

import random
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.plan.compile import compile_plan
from conveyor.plan.fingerprint import fingerprint, step_parts
from conveyor.spec.load import parse_pipeline

KEY = b"k" * 32
WORD = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
PATH = st.lists(WORD, min_size=1, max_size=3).map("/".join)
TEXT = st.from_regex(r"[a-z][a-z0-9 ._-]{0,20}[a-z0-9]", fullmatch=True)
ENV_NAME = st.from_regex(r"E_[A-Z]{1,4}", fullmatch=True)
SECRET_VAR = st.from_regex(r"S_[A-Z]{1,4}", fullmatch=True)
SECRET_NAME = st.sampled_from(["API_TOKEN", "DB_PASSWORD", "KEY"])
SECRET_VALUE = st.text(min_size=1, max_size=12)

STEP = st.fixed_dictionaries(
    {
        "id": st.just("work"),
        "run": TEXT,
        "env": st.dictionaries(ENV_NAME, TEXT, max_size=3),
        "inputs": st.lists(PATH.map(lambda p: f"in/{p}"), unique=True, max_size=3),
        "outputs": st.lists(WORD.map(lambda p: f"out/{p}"), unique=True, max_size=3),
        "secrets": st.dictionaries(SECRET_VAR, SECRET_NAME, max_size=2),
    },
    optional={"image": st.sampled_from(["alpine:3.20", "python:3.11-slim"])},
)
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pipeline(step: dict[str, Any], param: int, uses_param: bool) -> dict[str, Any]:
    step = dict(step)
    if uses_param:
        step["run"] = step["run"] + " ${{ params.p }}"
    return {"name": "prop", "params": {"p": param}, "jobs": {"j": {"steps": [step]}}}


def _key(text: str, contents: dict[str, str], values: dict[str, str]) -> str:
    spec = parse_pipeline(text, "conveyor.yml")
    (step,) = compile_plan(spec).steps
    parts = step_parts(
        step,
        inputs={p: contents.get(p, "0" * 64) for p in step.inputs},
        upstream={},
        environment="py3.11",
        secret_values=values,
        secret_key=KEY,
    )
    return fingerprint(parts)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=10**6)


def _shuffled(data: Any, rng: random.Random) -> Any:
    """The same data with every mapping's keys in another order (lists keep theirs)."""
    if isinstance(data, dict):
        keys = list(data)
        rng.shuffle(keys)
        return {k: _shuffled(data[k], rng) for k in keys}
    if isinstance(data, list):
        return [_shuffled(v, rng) for v in data]
    return data


def _commented(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    out = ["# a pipeline, with comments"]
    for line in lines:
        out.append(line)
        if rng.random() < 0.5:
            out.append("# " + "note " * rng.randint(0, 3))
    return "\n".join(out) + "\n"


def _values(step: dict[str, Any]) -> dict[str, str]:
    return {name: f"value-of-{name}" for name in step["secrets"].values()}


@SLOW
@given(step=STEP, seed=st.integers(0, 2**32 - 1), param=st.integers(0, 9), uses=st.booleans())
def test_key_order_and_comments_keep_the_key(
    step: dict[str, Any], seed: int, param: int, uses: bool
) -> None:
    rng = random.Random(seed)
    data = _pipeline(step, param, uses)
    values = _values(step)
    base = _key(_dump(data), {}, values)
    assert _key(_dump(_shuffled(data, rng)), {}, values) == base
    assert _key(_commented(_dump(data), rng), {}, values) == base


@SLOW
@given(
    step=STEP,
    timeout=st.integers(1, 10_000),
    retries=st.integers(0, 5),
    cache=st.booleans(),
)
def test_fields_that_only_govern_how_a_step_runs_keep_the_key(
    step: dict[str, Any], timeout: int, retries: int, cache: bool
) -> None:
    values = _values(step)
    base = _key(_dump(_pipeline(step, 1, False)), {}, values)
    changed = {**step, "timeout": timeout, "retries": retries, "cache": cache, "name": "x"}
    assert _key(_dump(_pipeline(changed, 1, False)), {}, values) == base


def _mutations(step: dict[str, Any], data: st.DataObject) -> list[tuple[str, dict[str, Any]]]:
    """(field, the step with that field changed) for each field that decides the outputs."""
    new_run = data.draw(TEXT.filter(lambda t: t != step["run"]), "run")
    new_env_name = data.draw(ENV_NAME.filter(lambda n: n not in step["env"]), "env name")
    new_input = data.draw(PATH.map(lambda p: f"in/{p}").filter(lambda p: p not in step["inputs"]))
    new_output = data.draw(
        WORD.map(lambda p: f"out/{p}").filter(lambda p: p not in step["outputs"]), "output"
    )
    out = [
        ("run", {**step, "run": new_run}),
        ("env added", {**step, "env": {**step["env"], new_env_name: "v"}}),
        ("input added", {**step, "inputs": [*step["inputs"], new_input]}),
        ("output added", {**step, "outputs": [*step["outputs"], new_output]}),
        ("image", {**step, "image": "debian:12" if step.get("image") else "alpine:3.19"}),
    ]
    if step["env"]:
        name = sorted(step["env"])[0]
        value = data.draw(TEXT.filter(lambda t: t != step["env"][name]), "env value")
        out.append(("env value", {**step, "env": {**step["env"], name: value}}))
        out.append(
            ("env removed", {**step, "env": {k: v for k, v in step["env"].items() if k != name}})
        )
    if step["outputs"]:
        renamed = [new_output, *step["outputs"][1:]]
        out.append(("output renamed", {**step, "outputs": renamed}))
        out.append(("output removed", {**step, "outputs": step["outputs"][1:]}))
    if step["inputs"]:
        out.append(("input removed", {**step, "inputs": step["inputs"][1:]}))
    if step["secrets"]:
        var = sorted(step["secrets"])[0]
        other = "OTHER_SECRET"
        out.append(("secret name", {**step, "secrets": {**step["secrets"], var: other}}))
    return out


@SLOW
@given(step=STEP, data=st.data())
def test_every_change_that_decides_the_outputs_changes_the_key(
    step: dict[str, Any], data: st.DataObject
) -> None:
    values = {**_values(step), "OTHER_SECRET": "other"}
    base = _key(_dump(_pipeline(step, 1, True)), {}, values)
    for field, changed in _mutations(step, data):
        key = _key(_dump(_pipeline(changed, 1, True)), {}, values)
        assert key != base, f"changing the {field} kept the key"
    assert _key(_dump(_pipeline(step, 2, True)), {}, values) != base, "param value"


@SLOW
@given(step=STEP, data=st.data())
def test_input_content_and_secret_values_change_the_key(
    step: dict[str, Any], data: st.DataObject
) -> None:
    text = _dump(_pipeline(step, 1, False))
    values = _values(step)
    base = _key(text, {}, values)
    if step["inputs"]:
        assert _key(text, {step["inputs"][0]: "1" * 64}, values) != base
    if step["secrets"]:
        name = sorted(values)[0]
        new = data.draw(SECRET_VALUE.filter(lambda v: v != values[name]), "secret value")
        assert _key(text, {}, {**values, name: new}) != base
