"""``${{ event.* }}`` and ``${{ pipeline.* }}``: read field by field from the run's
trigger, each missing field named; a server's queued run gives its own facts."""

from __future__ import annotations

import pytest

from conveyor.domain.conditions import TriggerContext, pipeline_values
from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.plan.template import TemplateError, evaluate
from conveyor.sdk.runfacts import server_payload
from conveyor.spec.formats import parse_text

EVENT = {"file": {"id": "f1", "tags": ["a"]}, "n": 3}


def test_a_nested_field_is_read_and_a_missing_one_named() -> None:
    names = TriggerContext(EVENT).names()
    assert evaluate("event.file.id", names, set()) == "f1"
    assert evaluate("event.file.tags", names, set()) == ["a"]
    with pytest.raises(
        TemplateError, match=r"event.file.name is not defined \(defined event.file: id, tags\)"
    ):
        evaluate("event.file.name", names, set())
    with pytest.raises(TemplateError, match=r"event\.n is not an object"):
        evaluate("event.n.x", names, set())


def test_the_plan_gives_the_pipeline_its_name_and_keeps_types_in_inputs() -> None:
    spec = parse_text(
        "name: demo\njobs:\n  a:\n    steps:\n      - run: echo ${{ pipeline.name }}"
        " ${{ pipeline.projectId }} ${{ event.n }}\n",
        "conveyor.yml",
    )
    trigger = TriggerContext(EVENT, pipeline_values("conveyor.yml", "proj"))
    plan = compile_plan(spec, trigger=trigger)
    assert plan.steps[0].command == "echo demo proj 3"
    with pytest.raises(SpecError, match=r"conveyor.yml:5:\d+: .*--payload FILE.json"):
        compile_plan(spec, trigger=TriggerContext({}, pipeline_values("conveyor.yml", "p")))


def test_a_queued_runs_payload_says_what_triggered_it() -> None:
    tag = server_payload("refs/tags/v1", "c" * 40, "push", "ada", "demo")
    assert tag == {
        "trigger": "push",
        "event": "tag",
        "ref": "refs/tags/v1",
        "commit": "c" * 40,
        "tag": "v1",
        "who": "ada",
        "projectId": "demo",
    }
    scheduled = server_payload("refs/heads/main", "c" * 40, "schedule", "clock", "demo")
    assert scheduled["event"] == "cron" and scheduled["branch"] == "main"
