"""DataTorch parity: the same pipeline and actions run by the real ``datatorch`` 0.8.0
package (its local ``Job``, as ``datatorch pipeline run``) and by ``conveyor run`` give
the same outputs, step by step, and fail the same jobs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from conveyor.sdk.project import Project
from tests.integration.conftest import Repo
from tests.integration.datatorch_oracle import run_pipeline
from tests.integration.test_uses_run import _wheel

pytestmark = pytest.mark.integration

GIT_USER = ["-c", "user.email=t@e.invalid", "-c", "user.name=T"]

EMIT = """\
$schema: https://datatorch.io/schema/action.v1.json
name: Emit
cache: false
env: {}
inputs:
  a: {type: integer, required: true}
  b: {type: integer, default: 1}
  flag: {type: boolean}
  word: {type: string}
  tags: {type: array, default: "[1, 2]"}
outputs:
  sum: {type: integer}
runs:
  using: python
  main: /emit.py
"""
EMIT_PY = """\
import json, sys
inputs = json.loads(sys.argv[1])
print("::sum::" + json.dumps(inputs["a"] + inputs["b"]))
print("::extra::" + json.dumps({"k": inputs["tags"]}))   # printed, not declared
print("::flag::" + json.dumps(inputs.get("flag")))
print("log text:: word ::" + json.dumps(inputs.get("word")))  # DataTorch's split: `word`
import tinydep  # from its requirements.txt, installed into the action's own environment
print("::shout::" + json.dumps(tinydep.shout("hi")))
"""
JOIN = """\
name: Join
inputs:
  text: {type: string, required: true}
runs:
  using: commandline
  command: python3 -c 'import json, os; print("::joined::" + json.dumps(os.environ["INPUT_TEXT"]))'
"""
BAD = """\
name: Bad
runs:
  using: cmd
  command: echo '::broken::not json'
"""
SCRIPT = """\
name: Script
inputs:
  who: {type: string, default: nobody}
runs:
  using: script
  script: args.sh --flag two
"""
ARGS_SH = """\
#!/bin/sh
printf '::args::["%s", "%s", "%s"]\\n' "$1" "$2" "$#"
printf '::who::"%s"\\n' "$INPUT_WHO"
"""
NAMES = """\
name: Namespaces
inputs:
  where: {type: string, default: "${{ action.name }} on ${{ machine.os }}"}
runs:
  using: cmd
  command: >-
    echo "::text::\\"${{ action.name }}|${{ action.tag }}|${{ step.name }}|${{ machine.os }}|${{
    python.implementation }}\\"" && echo "::where::\\"$INPUT_WHERE\\""
"""

PIPELINE = """\
$schema: https://datatorch.io/schema/pipeline.v1.json
name: parity
project: acme/demo
jobs:
  main:
    steps:
      - name: First sum
        action: {name: acme/emit, tag: v1, git: "GIT"}
        inputs: {a: "2", b: 3, flag: "false", word: 7}
      - name: Second
        action: {name: acme/emit, tag: v1, git: "GIT"}
        inputs:
          a: ${{ steps.First sum.outputs.sum }}
          b: ${{ input.offset }}
          flag: ""
          word: extra is ${{ steps.First sum.output.extra }}
          tags: ${{ steps.First sum.outputs.extra }}
      - name: Join
        action: {name: acme/emit, tag: v1, git: "GIT", file: join.yaml}
        inputs:
          text: ${{ steps.Second.outputs.sum }}-${{ steps.First sum.outputs.flag }}-${{ inputs.offset }}
  script:
    steps:
      - name: Args
        action: {name: acme/emit, tag: v1, git: "GIT", file: script.yaml}
        inputs: {who: someone}
  names:
    steps:
      - name: Where it runs
        action: {name: acme/emit, tag: v1, git: "GIT", file: names.yaml}
  broken:
    steps:
      - name: Bad line
        action: {name: acme/emit, tag: v1, git: "GIT", file: bad.yaml}
      - name: Never
        action: {name: acme/emit, tag: v1, git: "GIT", file: script.yaml}
"""


def _actions_repo(path: Path) -> str:
    path.mkdir()
    files = {
        "action-datatorch.yaml": EMIT,
        "emit.py": EMIT_PY,
        "join.yaml": JOIN,
        "bad.yaml": BAD,
        "script.yaml": SCRIPT,
        "args.sh": ARGS_SH,
        "names.yaml": NAMES,
    }
    wheels = path.parent / "wheels"
    wheels.mkdir()
    files["requirements.txt"] = f"{wheels / _wheel(wheels)}\n"
    for name, text in files.items():
        (path / name).write_text(text)
    (path / "args.sh").chmod(0o755)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "v1"]):
        subprocess.run(["git", *GIT_USER, *args], cwd=path, check=True)
    subprocess.run(["git", "tag", "v1"], cwd=path, check=True)
    return f"file://{path}"


def _conveyor_outputs(repo: Repo) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Outputs by job and step name, and the status of each step, of the latest run."""
    shown = repo.show()
    plan = repo.run("plan", "-f", "pipeline.yml", "--param", "offset=4", "--json").json()
    names = {s["id"]: s["name"] for s in plan["steps"]}
    status = {names[s["id"]]: s["status"] for s in shown["steps"]}
    outputs: dict[str, dict[str, Any]] = {}
    for event in Project(repo.path).records.events(shown["id"]):
        if event.kind == "action-outputs" and event.step_id:
            job = event.step_id.split(".", 1)[0]
            outputs.setdefault(job, {})[names[event.step_id]] = event.data["outputs"]
    return outputs, status


def test_conveyor_runs_a_datatorch_pipeline_as_datatorch_does(repo: Repo, tmp_path: Path) -> None:
    url = _actions_repo(tmp_path / "actions")
    repo.write("pipeline.yml", PIPELINE.replace("GIT", url))
    repo.commit()

    oracle = run_pipeline(repo.path / "pipeline.yml", {"offset": "4"}, tmp_path / "dt")
    result = repo.run("run", "-f", "pipeline.yml", "--param", "offset=4")
    outputs, status = _conveyor_outputs(repo)

    # the jobs DataTorch completes, with every step's outputs, Conveyor completes alike
    assert "error" not in oracle["main"], oracle["main"]
    assert outputs["main"] == oracle["main"]["outputs"]
    assert outputs["script"] == oracle["script"]["outputs"]
    assert outputs["names"] == oracle["names"]["outputs"]
    # what that means: by-name references, casts (bool("false") is true), undeclared
    # outputs, whole references keeping their type, trigger inputs, script arguments,
    # a python action with a requirements.txt run in an environment of its own
    assert oracle["main"]["outputs"]["Second"]["sum"] == 9
    assert oracle["main"]["outputs"]["First sum"]["flag"] is True
    assert oracle["main"]["outputs"]["First sum"]["shout"] == "HI!"
    assert oracle["main"]["outputs"]["Join"]["joined"] == "9-true-4"
    assert oracle["script"]["outputs"]["Args"] == {"args": ["--flag", "two", "2"], "who": "someone"}
    assert oracle["names"]["outputs"]["Where it runs"]["text"].startswith("Namespaces|v1|Where")

    # an output line that is not JSON fails the step, and the job stops there
    assert oracle["broken"]["error"] == "JSONDecodeError"
    assert result.code != 0
    assert status["Bad line"] == "failed"
    assert status["Never"] != "succeeded"
    assert "does not hold JSON" in repo.run("logs", "latest").out + result.err + result.out


def test_a_converted_file_fetches_its_actions_again_in_a_fresh_clone(
    repo: Repo, tmp_path: Path
) -> None:
    url = _actions_repo(tmp_path / "actions")
    repo.write("pipeline.yml", PIPELINE.split("  broken:", maxsplit=1)[0].replace("GIT", url))
    repo.commit()
    oracle = run_pipeline(repo.path / "pipeline.yml", {"offset": "4"}, tmp_path / "dt")

    converted = repo.run("convert", "-f", "pipeline.yml", "-o", "conveyor.yml")
    assert converted.code == 0, converted.err
    text = (repo.path / "conveyor.yml").read_text()
    assert f"uses: {url}@v1" in text and "action-file: join.yaml" in text
    assert ".conveyor/cache" not in text  # no path into this checkout's clones
    (repo.path / "pipeline.yml").unlink()
    repo.commit("converted")

    fresh = Repo(tmp_path / "fresh")
    subprocess.run(["git", "clone", "-q", str(repo.path), str(fresh.path)], check=True)
    result = fresh.run("run", "--param", "offset=4")
    assert result.code == 0, result.err
    shown = fresh.show()
    outputs: dict[str, dict[str, Any]] = {}
    for event in Project(fresh.path).records.events(shown["id"]):
        if event.kind == "action-outputs" and event.step_id:
            job, step = event.step_id.split(".", 1)
            outputs.setdefault(job, {})[step] = event.data["outputs"]
    by_id = {"first-sum": "First sum", "second": "Second", "join": "Join", "args": "Args"}
    for job in ("main", "script"):
        named = {by_id[step]: values for step, values in outputs[job].items()}
        assert named == oracle[job]["outputs"]
