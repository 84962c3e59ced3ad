"""DataTorch pipelines: what a pipeline file or a trigger gives stays data. An action
reference's ``file:`` names a file in the action, never a path out of it; a trigger
input (a run parameter) reaches the action as a value, never as shell text; a step name
in a reference is only looked up, never evaluated."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import load_file

ACTION = """\
name: Echo
inputs:
  who: {type: string, required: true}
runs:
  using: cmd
  command: printf '%s\\n' "$INPUT_WHO"
"""


def _project(tmp_path: Path, pipeline: str) -> Path:
    (tmp_path / "actions" / "echo").mkdir(parents=True)
    (tmp_path / "actions" / "echo" / "action-datatorch.yaml").write_text(ACTION)
    (tmp_path / "secret.yaml").write_text(ACTION.replace("Echo", "Stolen"))
    path = tmp_path / "pipeline.yml"
    path.write_text(pipeline)
    return path


@pytest.mark.parametrize("name", ["../../secret.yaml", "/etc/passwd", "sub/x.yaml", ".."])
def test_an_action_file_is_a_name_in_the_action(tmp_path: Path, name: str) -> None:
    path = _project(
        tmp_path,
        "name: p\njobs:\n  j:\n    steps:\n"
        f"      - action: {{name: acme/echo, tag: v1, file: '{name}'}}\n"
        "        inputs: {who: x}\n",
    )
    with pytest.raises(SpecError, match="must be a file name"):
        load_file(path, "pipeline.yml")


def test_a_trigger_input_reaches_the_action_as_data(tmp_path: Path) -> None:
    path = _project(
        tmp_path,
        "name: p\njobs:\n  j:\n    steps:\n"
        "      - name: Say\n        action: ./actions/echo\n"
        "        inputs: {who: '${{ input.who }}'}\n",
    )
    hostile = "$(touch pwned); `id` ${{ 7*7 }}"
    plan = compile_plan(load_file(path, "pipeline.yml"), {"who": hostile})
    step = plan.steps[0]
    assert dict(step.action_inputs) == {"who": hostile}
    assert "pwned" not in step.command


def test_a_step_name_in_a_reference_is_only_looked_up(tmp_path: Path) -> None:
    path = _project(
        tmp_path,
        "name: p\njobs:\n  j:\n    steps:\n"
        "      - name: Say\n        action: ./actions/echo\n        inputs: {who: x}\n"
        "      - action: ./actions/echo\n"
        "        inputs: {who: '${{ steps.__import__(\"os\").outputs.x }}'}\n",
    )
    with pytest.raises(SpecError, match="is not an earlier step of this job"):
        load_file(path, "pipeline.yml")


def test_namespaces_in_a_command_are_expansions_never_text(tmp_path: Path) -> None:
    path = _project(
        tmp_path,
        "name: p\njobs:\n  j:\n    steps:\n"
        "      - name: '$(touch pwned)'\n        action: ./actions/named\n",
    )
    named = tmp_path / "actions" / "named"
    named.mkdir()
    (named / "action-datatorch.yaml").write_text(
        'name: Named\nruns:\n  using: cmd\n  command: echo "${{ step.name }}"\n'
    )
    step = compile_plan(load_file(path, "pipeline.yml")).steps[0]
    assert step.command == 'echo "${DATATORCH_STEP_NAME}"'
    assert dict(step.env)["DATATORCH_STEP_NAME"] == "$(touch pwned)"


def test_an_input_in_a_command_is_refused_as_datatorch_refuses_it(tmp_path: Path) -> None:
    path = _project(
        tmp_path,
        "name: p\njobs:\n  j:\n    steps:\n      - action: ./actions/spliced\n",
    )
    spliced = tmp_path / "actions" / "spliced"
    spliced.mkdir()
    (spliced / "action-datatorch.yaml").write_text(
        "name: Spliced\nruns:\n  using: cmd\n  command: echo ${{ input.who }}\n"
    )
    with pytest.raises(SpecError, match="refuses inputs in shell text"):
        load_file(path, "pipeline.yml")
