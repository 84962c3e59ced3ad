"""What foreign formats added below the loaders: step-level needs, steps that may fail,
image steps without a container runtime, action inputs and outputs, the plan cache key."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from conveyor.domain.conditions import TriggerContext
from conveyor.domain.states import RunStatus
from conveyor.errors import ProjectError, SpecError
from conveyor.execute.containers import host_command, image_name
from conveyor.execute.events import Finished, Launch, StepFailed, StepSucceeded
from conveyor.execute.scheduler import Scheduler
from conveyor.plan import actions
from conveyor.plan.compile import compile_plan
from conveyor.plan.fingerprint import explain_change, fingerprint_parts
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.sdk import plancache
from conveyor.sdk.settings import Settings
from conveyor.spec.formats import parse_text
from conveyor.spec.load import parse_pipeline


def native(text: str) -> ExecutionPlan:
    return compile_plan(parse_pipeline(dedent(text), "conveyor.yml"))


# -- step-level needs ---------------------------------------------------------------


def test_steps_may_name_the_steps_they_wait_for() -> None:
    plan = native(
        """
        jobs:
          a:
            steps:
              - {id: one, run: x}
              - {id: two, run: x, needs: []}
              - {id: three, run: x, needs: [one, two]}
              - {id: four, run: x}
          b:
            needs: a
            steps:
              - run: y
        """
    )
    needs = {s.id: set(s.needs) for s in plan.steps}
    assert needs["a.one"] == set() and needs["a.two"] == set()
    assert needs["a.three"] == {"a.one", "a.two"}
    assert needs["a.four"] == {"a.three"}  # no needs: the step before
    assert needs["b.step-1"] == {"a.four"}


def test_a_graph_job_is_waited_for_at_every_end() -> None:
    plan = native(
        """
        jobs:
          a:
            steps:
              - {id: one, run: x, needs: []}
              - {id: two, run: x, needs: []}
          b:
            needs: [a]
            steps:
              - run: y
        """
    )
    assert set(plan.step("b.step-1").needs) == {"a.one", "a.two"}


def test_a_step_need_must_name_a_step_of_the_job() -> None:
    with pytest.raises(SpecError, match=r"conveyor.yml:6:35: step a.two needs 'nope'"):
        native(
            """
            jobs:
              a:
                steps:
                  - {id: one, run: x}
                  - {id: two, run: x, needs: [nope]}
            """
        )


def test_run_is_required_unless_the_step_names_an_image() -> None:
    plan = native("jobs:\n  a:\n    steps:\n      - image: alpine\n")
    assert plan.steps[0].command == "" and plan.steps[0].image == "alpine"
    with pytest.raises(SpecError, match=r"jobs\.a\.steps\[0\]: a step has either `run:`"):
        native("jobs:\n  a:\n    steps:\n      - name: x\n")


# -- continue-on-error (Drone's failure: ignore) ------------------------------------------


def test_a_step_that_may_fail_neither_fails_the_run_nor_its_dependents() -> None:
    plan = ExecutionPlan(
        "p",
        (),
        (
            StepPlan("a.lint", "a", "lint", "false", allow_failure=True),
            StepPlan("a.test", "a", "test", "true", needs=("a.lint",)),
        ),
    )
    scheduler = Scheduler(plan, 1)
    assert scheduler.start() == [Launch("a.lint", 1)]
    assert scheduler.handle(StepFailed("a.lint", retryable=False)) == [Launch("a.test", 1)]
    assert not scheduler.failed_so_far()
    assert scheduler.handle(StepSucceeded("a.test")) == [Finished(RunStatus.SUCCEEDED)]


# -- image steps -----------------------------------------------------------------------


def test_image_steps_without_a_runtime_fail_in_one_sentence() -> None:
    step = StepPlan("j.s", "j", "s", "make", image="python:3.11")
    _, refusal = host_command(step, "fail", {})
    assert refusal is not None and "no container runtime is configured" in refusal
    assert 'on_missing = "host"' in refusal
    assert host_command(step, "host", {}) == ("make", None)
    plugin = StepPlan("j.p", "j", "p", "", image="registry:5000/org/slack:1.2")
    assert host_command(plugin, "host", {"registry:5000/org/slack": "notify"}) == ("notify", None)
    _, why = host_command(plugin, "host", {})
    assert why is not None and "[containers.plugins]" in why


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("alpine", "alpine"),
        ("alpine:3.19", "alpine"),
        ("plugins/slack:1", "plugins/slack"),
        ("registry:5000/org/x:2@sha256:abc", "registry:5000/org/x"),
    ],
)
def test_image_names_drop_tag_and_digest(image: str, name: str) -> None:
    assert image_name(image) == name


def test_the_image_joins_the_fingerprint_only_when_set() -> None:
    plain = fingerprint_parts("c", {}, {}, {}, {}, "e")
    assert "image" not in plain and "action" not in plain
    one = fingerprint_parts("c", {}, {}, {}, {}, "e", image="a:1")
    two = fingerprint_parts("c", {}, {}, {}, {}, "e", image="a:2")
    assert explain_change(one, two) == ["the image changed (a:1 -> a:2)"]


def test_container_settings(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[containers]\non_missing = "host"\n[containers.plugins]\n"a/b" = "run-b"\n'
        '[actions]\npaths = ["actions"]\n'
    )
    settings = Settings.load(tmp_path)
    assert settings.containers.on_missing == "host"
    assert settings.containers.plugins == {"a/b": "run-b"}
    assert settings.action_paths == ("actions",)
    (tmp_path / "config.toml").write_text('[containers]\non_missing = "docker"\n')
    with pytest.raises(ProjectError, match="on_missing"):
        Settings.load(tmp_path)


# -- action inputs and outputs -------------------------------------------------------------


def test_a_whole_string_reference_keeps_its_type() -> None:
    outputs = {"j.a": {"n": 3, "xs": [1, 2]}}
    resolved = actions.resolve_inputs(
        {
            "n": "${{ steps.a.outputs.n }}",
            "xs": " ${{steps.a.outputs.xs}} ",
            "text": "n=${{ steps.a.outputs.n }} xs=${{ steps.a.outputs.xs }}",
            "plain": {"k": "${{ steps.a.outputs.n }}"},
        },
        "j",
        outputs,
    )
    assert resolved == {
        "n": 3,
        "xs": [1, 2],
        "text": "n=3 xs=[1, 2]",
        "plain": {"k": "${{ steps.a.outputs.n }}"},  # only top-level strings are rendered
    }
    with pytest.raises(actions.UnresolvedOutput):
        actions.resolve_inputs({"m": "${{ steps.a.outputs.m }}"}, "j", outputs)


def test_inputs_reach_the_step_as_variables_and_one_json_document() -> None:
    env = actions.input_environment({"who": "a; rm -rf /", "n": 2, "my-key": True})
    assert env["INPUT_WHO"] == "a; rm -rf /"
    assert env["INPUT_N"] == "2"
    assert env["INPUT_MY_KEY"] == "true"
    assert env[actions.INPUTS_VARIABLE] == '{"my-key": true, "n": 2, "who": "a; rm -rf /"}'


def test_outputs_are_read_from_marked_lines() -> None:
    log = 'hello\n::sum::3\n::name::"x"\n::sum::4\n::other::1\n::raw::not json\n'
    assert actions.parse_outputs(log, ("sum", "name", "raw")) == {
        "sum": 4,
        "name": "x",
        "raw": "not json",
    }


# -- the plan cache key ----------------------------------------------------------------


def test_the_plan_cache_key_depends_on_the_file_name_and_the_trigger() -> None:
    key, none = plancache._key, TriggerContext()
    assert key(".drone.yml", b"x", {}, (), none) != key("conveyor.yml", b"x", {}, (), none)
    assert key(".drone.yml", b"x", {}, (), none) == key(".drone.yml", b"x", {}, (), none)
    event = TriggerContext({"fileId": "f1"})
    assert key("p.yaml", b"x", {}, (), event) != key("p.yaml", b"x", {}, (), none)


# -- detection ---------------------------------------------------------------------------


def test_formats_are_detected_by_shape() -> None:
    drone = parse_text("kind: pipeline\nsteps:\n  - name: a\n    commands: [x]\n", "f.yml")
    assert drone.format == "drone"
    ds = parse_text("kind: pipeline\nafter:\n  - name: a\n    commands: [x]\n", "f.yml")
    assert ds.format == "dotscience"
    plain = parse_text("jobs:\n  a:\n    steps:\n      - run: x\n", "f.yml")
    assert plain.format == "conveyor"


def test_an_absolute_input_does_not_hang_order_inference() -> None:
    plan = native(
        """
        jobs:
          a:
            steps:
              - run: x
                outputs: [out/a.txt]
          b:
            steps:
              - run: y
                inputs: [/etc/hostname, /etc/*.conf]
        """
    )
    assert plan.step("b.step-1").needs == ()
