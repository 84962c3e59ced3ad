"""The documents of a .drone.yml as Drone reads them: other kinds, other pipeline types,
keys that cannot mean anything here (one warning each pipeline), Drone 0.8 files."""

from __future__ import annotations

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import parse_text
from conveyor.spec.model import PipelineSpec

STEPS = "steps:\n  - name: a\n    image: golang\n    commands: [go build]\n"


def load(text: str) -> PipelineSpec:
    return parse_text(text, ".drone.yml", "drone")


def test_a_kubernetes_pipeline_runs_as_docker_with_one_warning_naming_what_was_ignored() -> None:
    spec = load(
        "kind: pipeline\ntype: kubernetes\nname: k\nnode_selector: {pool: ci}\n"
        "tolerations: [{key: x}]\nservice_account_name: builder\n" + STEPS
    )
    assert spec.warnings == (
        ".drone.yml:1:1: pipeline 'k': type: kubernetes runs as a docker pipeline here; "
        "ignored: node_selector (no Kubernetes nodes); tolerations (no Kubernetes nodes); "
        "service_account_name (no Kubernetes)",
    )
    (step,) = compile_plan(spec).steps
    assert (step.image, step.command) == ("golang", "go build")


def test_signature_documents_are_ignored_and_secret_documents_warn() -> None:
    spec = load(
        "kind: pipeline\n" + STEPS + "---\nkind: secret\nname: token\nget: {path: a, name: b}\n"
        "---\nkind: signature\nhmac: 0123\n"
    )
    assert spec.warnings == (
        ".drone.yml:7:1: kind: secret 'token' is not fetched from an external store: "
        "`from_secret: token` reads the project's secret 'token'",
    )
    assert len(compile_plan(spec).steps) == 1


def test_a_capitalised_kind_is_a_pipeline_as_in_drone() -> None:
    assert len(compile_plan(load("kind: Pipeline\n" + STEPS)).steps) == 1


def test_depends_on_the_implicit_clone_step_and_pull_default() -> None:
    spec = load(
        "kind: pipeline\nsteps:\n  - name: a\n    image: golang\n    pull: default\n"
        "    commands: [go build]\n    depends_on: [clone]\n"
    )
    (step,) = compile_plan(spec).steps
    assert (step.needs, step.pull) == ((), "if-not-exists")


def test_a_drone_08_file_with_repeated_keys_is_refused_as_0_8() -> None:
    with pytest.raises(SpecError) as caught:
        load("pipeline:\n  a:\n    image: x\n  a:\n    image: y\n")
    assert str(caught.value).startswith(".drone.yml:1:1: this is a Drone 0.8 file")
    assert "drone convert" in str(caught.value)


def test_a_file_of_secrets_only_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        load("kind: secret\nname: a\n")
    assert str(caught.value) == ".drone.yml: the file holds no `kind: pipeline` document"
