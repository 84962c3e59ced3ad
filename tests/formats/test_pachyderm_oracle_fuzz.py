"""Field names and types against Pachyderm's protobuf reader, on random specs.

A valid spec gets one field set to a random value (of the right type or not, nested or
not, in ``snake_case`` or ``camelCase``); whenever python_pachyderm's
``parse_dict_pipeline_spec`` refuses it, Conveyor refuses it too. (The converse does not
hold on purpose: Conveyor also refuses meaning, see ``pachyderm/README.md``.) A field the
oracle accepts is refused by Conveyor's type layer only for a documented reason.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.errors import SpecError
from conveyor.spec.pachyderm import parse_specs
from conveyor.spec.pachyderm_fields import MESSAGES, REFUSED, json_name

BASE: dict[str, Any] = {
    "pipeline": {"name": "p"},
    "transform": {"cmd": ["sh"]},
    "input": {"pfs": {"repo": "r", "glob": "/*"}},
}
# where each message sits in a spec, to set one of its fields
PLACES: dict[str, tuple[str, ...]] = {
    "CreatePipelineRequest": (),
    "Pipeline": ("pipeline",),
    "Transform": ("transform",),
    "PFSInput": ("input", "pfs"),
    "ParallelismSpec": ("parallelism_spec",),
    "ResourceSpec": ("resource_requests",),
    "DatumSetSpec": ("datum_set_spec",),
    "CronInput": ("input", "cron"),
    "Input": ("input",),
    "SchedulingSpec": ("scheduling_spec",),
    "Metadata": ("metadata",),
    "GPUSpec": ("resource_limits", "gpu"),
}
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "3", "-1", "1.5", "60s", "1m", "true", "2024-01-01T00:00:00Z"])
)
VALUES = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "name"]), inner, max_size=2)
    ),
    max_leaves=6,
)
FIELDS = [
    (message, field)
    for message in PLACES
    for field in MESSAGES[message]
    if (message, field) not in REFUSED
]


def spec_with(message: str, field: str, value: Any, camel: bool) -> dict[str, Any]:
    spec = json.loads(json.dumps(BASE))
    target = spec
    for key in PLACES[message]:
        target = target.setdefault(key, {})
    if message == "CronInput":  # one kind of input per node
        spec["input"] = {"cron": {"name": "tick", "spec": "@every 10s"}}
        target = spec["input"]["cron"]
    target[json_name(field) if camel else field] = value
    return spec


def oracle_accepts(spec: dict[str, Any]) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        util = pytest.importorskip("python_pachyderm.util")
        from google.protobuf.json_format import ParseError

        try:
            util.parse_dict_pipeline_spec(spec)
        except ParseError:
            return False
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), VALUES, st.booleans())
def test_what_the_oracle_refuses_conveyor_refuses(
    place: tuple[str, str], value: Any, camel: bool
) -> None:
    spec = spec_with(*place, value, camel)
    if oracle_accepts(spec):
        return
    with pytest.raises(SpecError):
        parse_specs(json.dumps(spec), "spec.json", is_json=True)
