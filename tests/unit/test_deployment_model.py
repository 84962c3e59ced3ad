"""Deployments, pure parts: a call's inputs checked against the mappings, outputs
picked from a return value, endpoint tokens, declarations refused with a reason, and
the rate bucket."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from conveyor.errors import UsageError
from conveyor.server.deployments.model import (
    CallFile,
    CallInputError,
    DeploymentCreate,
    DeploymentSettings,
    InputMapping,
    OutputMapping,
    call_inputs,
    form_value,
    new_token,
    pick_outputs,
    token_matches,
)
from conveyor.server.warmpool.runtime import Bucket

MAPPINGS = (
    InputMapping(name="x", type="integer"),
    InputMapping(name="rate", type="number", required=False),
    InputMapping(name="label", type="string", value="cat"),
    InputMapping(name="mode", type="string", source="constant", value="fast"),
    InputMapping(name="key", source="environment", value="API_KEY"),
    InputMapping(name="data", source="dataset", value="images@master:/cats"),
)


def _env() -> dict[str, str]:
    return {"API_KEY": "k"}


def test_inputs_come_from_the_body_constants_variables_and_datasets() -> None:
    assert call_inputs(MAPPINGS, {"x": 3, "rate": 2}, _env) == {
        "x": 3,
        "rate": 2,
        "label": "cat",
        "mode": "fast",
        "key": "k",
        "data": "images@master:/cats",
    }


@pytest.mark.parametrize(
    ("body", "name", "expected"),
    [
        ({}, "x", "integer"),
        ({"x": "3"}, "x", "integer"),
        ({"x": 3.5}, "x", "integer"),
        ({"x": True}, "x", "integer"),
        ({"x": 1, "rate": "fast"}, "rate", "number"),
        ({"x": 1, "rate": False}, "rate", "number"),
        ({"x": 1, "label": 3}, "label", "string"),
        ({"x": 1, "other": 1}, "other", None),
        ({"x": 1, "mode": "slow"}, "mode", None),  # a constant is not the caller's
    ],
)
def test_bad_inputs_name_the_input_and_the_type(
    body: dict[str, Any], name: str, expected: str | None
) -> None:
    with pytest.raises(CallInputError) as caught:
        call_inputs(MAPPINGS, body, _env)
    assert caught.value.input == name and caught.value.expected == expected
    assert repr(name) in str(caught.value)


def test_the_projects_variables_are_read_only_when_mapped() -> None:
    def never() -> dict[str, str]:
        raise AssertionError("read without an environment mapping")

    assert call_inputs((InputMapping(name="x", type="integer"),), {"x": 1}, never) == {"x": 1}
    with pytest.raises(CallInputError, match=r"\$API_KEY is not set"):
        call_inputs(MAPPINGS, {"x": 1}, dict)


def test_outputs_are_picked_from_the_return_value() -> None:
    value = {"y": 2, "z": 3}
    assert pick_outputs((), value) == {"result": value}
    mapped = (OutputMapping(name="why", key="y"), OutputMapping(name="all"))
    assert pick_outputs(mapped, value) == {"why": 2, "all": value}
    assert pick_outputs(mapped, 5) == {"why": None, "all": 5}


def test_a_token_matches_only_its_digest_and_scheme() -> None:
    token, digest = new_token()
    other, _ = new_token()
    assert token != other and token not in digest
    assert token_matches(f"EndpointToken {token}", digest)
    assert not token_matches(f"Bearer {token}", digest)
    assert not token_matches(f"EndpointToken {other}", digest)
    assert not token_matches("EndpointToken ", digest)
    assert not token_matches(None, digest)
    assert not token_matches(f"EndpointToken {token}", None)


def test_declarations_are_refused_with_a_reason() -> None:
    with pytest.raises(UsageError, match="not a valid deployment name"):
        DeploymentCreate(name="Bad Name")
    with pytest.raises(UsageError, match=r"needs settings\.schedule"):
        DeploymentCreate(name="p", kind="periodic")
    with pytest.raises(UsageError, match="no request"):
        DeploymentCreate(
            name="p",
            kind="periodic",
            settings=DeploymentSettings(schedule="* * * * *", inputs=(MAPPINGS[0],)),
        )
    with pytest.raises(ValidationError, match="mapped twice"):
        DeploymentSettings(inputs=(MAPPINGS[0], MAPPINGS[0]))
    with pytest.raises(ValidationError, match="must be an integer"):
        InputMapping(name="x", type="integer", source="constant", value="three")
    with pytest.raises(ValidationError, match="needs its `path`"):
        OutputMapping(name="f", source="file")
    with pytest.raises(ValidationError):
        DeploymentSettings(pool_size=0)


def test_the_bucket_allows_its_rate_then_refuses() -> None:
    bucket = Bucket(3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


FILES = (
    InputMapping(name="image", type="file", accept=("image/*",)),
    InputMapping(name="mask", type="file", required=False),
    InputMapping(name="top", type="integer", required=False),
)


def test_a_file_input_takes_a_part_of_an_accepted_type() -> None:
    png = CallFile(b"\x89PNG", "image/png; charset=binary")
    values = call_inputs(FILES, {"top": 3}, dict, {"image": png})
    assert values == {"image": png, "top": 3}
    assert png.record()["file"]["size"] == 4 and "name" not in png.record()["file"]


@pytest.mark.parametrize(
    ("body", "files", "name", "expected", "words"),
    [
        ({}, {}, "image", "file", "is required"),
        ({"image": "cat.png"}, {}, "image", "file", "multipart/form-data"),
        ({}, {"image": CallFile(b"<html>", "text/html")}, "image", "file", "image/*"),
        (
            {},
            {"image": CallFile(b"", "image/png"), "top": CallFile(b"3", "x/y")},
            "top",
            "integer",
            "form field",
        ),
        (
            {},
            {"image": CallFile(b"", "image/png"), "extra": CallFile(b"", "x/y")},
            "extra",
            None,
            "not an input",
        ),
    ],
)
def test_file_inputs_refused_name_the_input(
    body: dict[str, Any], files: dict[str, CallFile], name: str, expected: str | None, words: str
) -> None:
    with pytest.raises(CallInputError) as caught:
        call_inputs(FILES, body, dict, files)
    assert caught.value.input == name and caught.value.expected == expected
    assert words in str(caught.value)


def test_form_fields_read_as_json_but_for_strings() -> None:
    top, label = FILES[2], InputMapping(name="label")
    assert form_value(top, "top", "3") == 3 and form_value(label, "label", "3") == "3"
    with pytest.raises(CallInputError, match="'top' must be an integer"):
        form_value(top, "top", "three")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "f", "type": "file", "source": "constant", "value": "x"},
        {"name": "f", "type": "file", "value": "default.bin"},
        {"name": "f", "type": "string", "accept": ["image/png"]},
        {"name": "f", "type": "file", "accept": ["not a type"]},
    ],
)
def test_file_mappings_that_cannot_work_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InputMapping.model_validate(fields)
