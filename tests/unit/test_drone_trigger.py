"""Drone's trigger/when read into native conditions; what cannot mean anything here is one
warning; a server's queued run as facts."""

from __future__ import annotations

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.sdk.runfacts import server_facts
from conveyor.spec.formats import parse_text
from conveyor.spec.model import PipelineSpec


def load(text: str) -> PipelineSpec:
    return parse_text(text, ".drone.yml", "drone")


def test_instance_and_paths_are_ignored_with_one_warning_each() -> None:
    spec = load(
        "kind: pipeline\ntrigger:\n  instance: [a.example]\n  branch: main\n"
        "steps:\n  - name: a\n    commands: [x]\n    when:\n      paths: [src/*]\n"
    )
    assert spec.warnings == (
        ".drone.yml:3:3: trigger.instance is ignored: there is one Conveyor, "
        "not several Drone instances",
        ".drone.yml:9:7: when.paths is ignored: Drone core does not read it either "
        "(it needs a conversion extension)",
    )
    (step,) = compile_plan(spec).steps
    assert [(c.scope, c.key, c.include) for c in step.conditions] == [("job", "branch", ("main",))]


def test_trigger_status_failure_runs_the_pipeline_only_after_a_failure() -> None:
    spec = load(
        "kind: pipeline\ntrigger:\n  status: [failure]\nsteps:\n  - name: a\n    commands: [x]\n"
    )
    assert compile_plan(spec).steps[0].policy == "failure"


def test_an_include_exclude_block_with_another_key_is_refused_where_it_is() -> None:
    with pytest.raises(SpecError) as caught:
        load(
            "kind: pipeline\ntrigger:\n  event:\n    only: [push]\nsteps:\n  - name: a\n    commands: [x]\n"
        )
    assert str(caught.value) == ".drone.yml:4:5: only: a condition has include and exclude"


@pytest.mark.parametrize(
    ("ref", "trigger", "event", "branch"),
    [
        ("refs/heads/main", "push", "push", "main"),
        ("refs/tags/v1", "push", "tag", ""),
        ("refs/tags/v1", "webhook", "tag", ""),
        ("refs/heads/main", "webhook", "push", "main"),
        ("refs/heads/main", "schedule", "cron", "main"),
        ("refs/heads/dev", "manual", "custom", "dev"),
    ],
)
def test_a_queued_run_becomes_drone_facts(ref: str, trigger: str, event: str, branch: str) -> None:
    facts = server_facts(ref, trigger, "team/app")
    assert (facts.event, facts.branch, facts.ref, facts.repo) == (event, branch, ref, "team/app")


def test_a_server_queues_a_drone_file_for_every_branch_and_tag() -> None:
    from conveyor.server.triggers import wanted

    spec = load(
        "kind: pipeline\ntrigger:\n  event: [tag]\nsteps:\n  - name: a\n    commands: [x]\n"
    )
    assert wanted(spec, "refs/tags/v1.0")
    assert wanted(spec, "refs/heads/feature/x")
