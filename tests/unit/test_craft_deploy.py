"""Craft deployments' pure parts: the SDK's mappings -> native mappings (what is
served, what is refused by name), and the native call refusing a Craft deployment."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.server.craft import deploy
from conveyor.server.craft.errors import CraftError
from conveyor.server.deployments import service
from conveyor.server.deployments.errors import DeploymentConflict
from conveyor.server.deployments.model import DeploymentSettings
from conveyor.server.deployments.store import DeploymentRecord

DEFINITION: dict[str, Any] = {
    "inputs": [
        {"name": "a", "data_type": "number", "is_required": True},
        {"name": "key", "data_type": "string"},
        {"name": "doc", "data_type": "file"},
    ],
    "outputs": [{"name": "total", "data_type": "number"}],
}


def refusal(call: Any) -> CraftError:
    with pytest.raises(CraftError) as caught:
        call()
    return caught.value


def test_constants_environment_and_null_are_mapped_the_rest_is_the_request() -> None:
    given = [
        {"pipeline_input_name": "a", "constant_value": 2},
        {"pipeline_input_name": "key", "environment_variable_name": "API_KEY"},
        {"pipeline_input_name": "doc", "endpoint_input_name": "doc"},
    ]
    mapped = deploy.input_mappings(DEFINITION, given, "endpoint")
    assert [(m.name, m.source, m.value) for m in mapped] == [
        ("a", "constant", 2),
        ("key", "environment", "API_KEY"),
    ]
    nulls = deploy.output_mappings(DEFINITION, [{"pipeline_output_name": "total", "is_null": 1}])
    assert [(m.name, m.source) for m in nulls] == [("total", "none")]


def test_bad_or_unserved_mappings_are_refused_by_name() -> None:
    wrong_type = refusal(
        lambda: deploy.input_mappings(
            DEFINITION, [{"pipeline_input_name": "a", "constant_value": "x"}], "endpoint"
        )
    )
    assert wrong_type.status == 400 and "'a' expects a number" in wrong_type.message
    unknown = refusal(
        lambda: deploy.input_mappings(DEFINITION, [{"pipeline_input_name": "z"}], "endpoint")
    )
    assert "no input 'z'" in unknown.message
    renamed = refusal(
        lambda: deploy.input_mappings(
            DEFINITION, [{"pipeline_input_name": "a", "endpoint_input_name": "b"}], "endpoint"
        )
    )
    assert renamed.status == 501 and "endpoint_input_name" in renamed.message
    store = refusal(
        lambda: deploy.output_mappings(
            DEFINITION, [{"pipeline_output_name": "total", "datastore_path": "x"}]
        )
    )
    assert store.status == 501 and "Data store" in store.message


def test_a_periodic_deployment_maps_every_input() -> None:
    given = [{"pipeline_input_name": "a", "constant_value": 1}]
    loose = refusal(lambda: deploy.input_mappings(DEFINITION, given, "periodic"))
    assert "not mapped: key, doc" in loose.message


def test_the_native_call_refuses_a_craft_deployment_and_names_its_endpoint() -> None:
    record = DeploymentRecord(
        project="demo",
        name="ep",
        kind="endpoint",
        mode="elastic",
        ref=deploy.PREFIX + "adder",
        follow=False,
        commit="0" * 40,
        settings=DeploymentSettings(),
        enabled=True,
        token_digest=None,
        next_at=None,
        created_by="lead",
        created_at=0.0,
        updated_at=0.0,
    )
    with pytest.raises(DeploymentConflict, match="/craft/demo/endpoints/ep"):
        service.call(None, record, {}, "member")  # type: ignore[arg-type]  # refused first
