"""YAML merge keys (`<<: *base`) as Drone files use them: keys written beside the merge
override the merged ones; a key written twice is still an error."""

from __future__ import annotations

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import parse_text
from conveyor.spec.yamlsource import load_documents

DRONE = """\
kind: pipeline
name: ci
x-base: &base
  image: golang:1.21
  commands: [go test ./...]
  environment: {CGO_ENABLED: "0"}
steps:
  - <<: *base
    name: test
  - <<: *base
    name: race
    commands: [go test -race ./...]
"""


def test_keys_beside_a_merge_override_the_merged_ones() -> None:
    ((data, _),) = list(load_documents(DRONE, ".drone.yml"))
    race = data["steps"][1]
    assert race["commands"] == ["go test -race ./..."]
    assert race["image"] == "golang:1.21"


def test_a_drone_file_with_merge_keys_compiles() -> None:
    text = """\
kind: pipeline
name: ci
environment: &env
  CGO_ENABLED: "0"
steps:
  - name: race
    image: golang
    commands: [go test ./...]
    environment:
      <<: *env
      CGO_ENABLED: "1"
      GOFLAGS: -race
"""
    plan = compile_plan(parse_text(text, ".drone.yml", "drone"))
    assert dict(plan.step("ci.race").env) == {"CGO_ENABLED": "1", "GOFLAGS": "-race"}


def test_the_first_of_several_merged_mappings_wins() -> None:
    text = "a: &a {x: 1}\nb: &b {x: 2}\nc:\n  <<: [*a, *b]\n"
    ((data, _),) = list(load_documents(text, "f.yml"))
    assert data["c"] == {"x": 1}


def test_a_key_written_twice_beside_a_merge_is_still_an_error() -> None:
    text = "a: &a {x: 1}\nc:\n  <<: *a\n  y: 1\n  y: 2\n"
    with pytest.raises(SpecError) as caught:
        list(load_documents(text, "f.yml"))
    assert str(caught.value) == "f.yml:5:3: duplicate key 'y'"
