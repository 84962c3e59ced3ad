"""DataTorch pipelines run end to end: actions from local paths and from git (pinned by
commit), inputs as INPUT_* and JSON, outputs flowing into later steps at launch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

CASE = Path(__file__).parents[1] / "formats" / "cases" / "datatorch-actions"

COUNT = """\
name: count
jobs:
  numbers:
    steps:
      - id: first
        action: ./actions/add
        cache: true
        inputs: {a: A_VALUE, b: 2}
      - id: second
        action: ./actions/add
        cache: true
        inputs:
          a: ${{ steps.first.outputs.sum }}
          b: 10
"""


def _copy_case(repo: Repo) -> None:
    shutil.copytree(CASE, repo.path, dirs_exist_ok=True)
    repo.commit()


def test_the_corpus_pipeline_runs(repo: Repo) -> None:
    _copy_case(repo)
    result = repo.run("run", "-f", "pipeline.yml")
    assert result.code == 0, result.err
    warning = "warning: pipeline.yml:3:1: triggers (schedule) are ignored"
    assert warning in result.err
    assert warning in repo.run("run", "-f", "pipeline.yml").err  # from the plan cache too
    # typed outputs flow on: 1+2=3, then 3+2=5, into a string and a typed input
    assert (repo.path / "report.txt").read_text() == 'total is 5|5|["a", "b"]\n'
    # an input with shell text in it reached the step as data, never as code
    assert (repo.path / "greeting.txt").read_text() == "hello world; rm -rf /\n"
    steps = repo.steps()
    assert steps["add.first"]["action"] == "./actions/add"
    assert steps["add.report"]["status"] == "succeeded"
    # later commands find the project without -f
    assert repo.run("show", "latest", "--json").code == 0


def test_resolved_inputs_are_part_of_the_fingerprint(repo: Repo) -> None:
    _copy_case(repo)
    repo.write("count.yml", COUNT.replace("A_VALUE", "1"))
    repo.commit()
    assert repo.run("run", "-f", "count.yml").code == 0
    again = repo.run("run", "-f", "count.yml")
    assert again.code == 0
    assert all(s["cached"] for s in repo.steps().values())
    repo.write("count.yml", COUNT.replace("A_VALUE", "5"))
    assert repo.run("run", "-f", "count.yml").code == 0
    steps = repo.steps()
    assert not steps["numbers.first"]["cached"]
    assert not steps["numbers.second"]["cached"]  # its resolved input a changed: 3 -> 7
    why = repo.run("why", "numbers.second", "--json")
    assert "action input a changed (3 -> 7)" in why.out
    # the first step's result came back from the cache: its outputs still flow on
    repo.write("count.yml", COUNT.replace("A_VALUE", "5").replace("b: 10", "b: 11"))
    assert repo.run("run", "-f", "count.yml").code == 0
    steps = repo.steps()
    assert steps["numbers.first"]["cached"] and not steps["numbers.second"]["cached"]


def test_an_output_that_was_not_set_fails_the_reader(repo: Repo) -> None:
    _copy_case(repo)
    repo.write("actions/add/add.py", "print('no outputs today')\n")
    repo.write("count.yml", COUNT.replace("A_VALUE", "1"))
    repo.commit()
    result = repo.run("run", "-f", "count.yml")
    assert result.code == 1
    error = repo.steps()["numbers.second"]["error"]
    assert error.startswith("step numbers.second reads steps.first.outputs.sum, which that")


def _action_repository(tmp_path: Path) -> str:
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "action-datatorch.yaml").write_text(
        "name: Echo\ninputs:\n  word: {type: string, required: true}\n"
        "outputs:\n  echoed: {type: string}\n"
        'runs:\n  using: cmd\n  command: echo "::echoed::\\"$INPUT_WORD!\\""\n'
    )
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.email=t@e.invalid", "-c", "user.name=T", "commit", "-qm", "v1"],
        ["tag", "v1"],
    ):
        subprocess.run(["git", *args], cwd=origin, check=True, capture_output=True)
    return origin.as_uri()


def test_an_action_from_git_is_cloned_once_and_pinned(repo: Repo, tmp_path: Path) -> None:
    url = _action_repository(tmp_path)
    commit = subprocess.run(
        ["git", "rev-parse", "v1^{commit}"],
        cwd=tmp_path / "origin",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    repo.write(
        "dt.yml",
        f"""\
        name: from-git
        jobs:
          say:
            steps:
              - id: echo
                action: {{name: someone/echo, tag: v1, git: "{url}"}}
                inputs: {{word: hi}}
              - id: again
                action: {{name: someone/echo, tag: v1, git: "{url}"}}
                inputs:
                  word: ${{{{ steps.echo.outputs.echoed }}}}
        """,
    )
    repo.commit()
    result = repo.run("run", "-f", "dt.yml")
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["say.echo"]["action_commit"] == commit
    clones = list((repo.path / ".conveyor" / "cache" / "actions").iterdir())
    assert len(clones) == 1 and clones[0].name.endswith("@v1")
    log = repo.run("logs", "latest", "say.again")
    assert '::echoed::"hi!!"' in log.out
    plan = repo.run("plan", "--json", "-f", "dt.yml").json()
    assert plan["steps"][0]["action"]["commit"] == commit


def test_a_run_of_a_file_named_with_f_can_be_rerun(repo: Repo) -> None:
    _copy_case(repo)
    repo.write("count.yml", COUNT.replace("A_VALUE", "1"))
    repo.commit()
    assert repo.run("run", "-f", "count.yml").code == 0
    result = repo.run("rerun", "latest", "--json")
    assert result.code == 0, result.err
    assert result.json()["reproduced"] is True


def test_latest_is_the_default_branch_and_a_bad_tag_is_bad_input(
    repo: Repo, tmp_path: Path
) -> None:
    url = _action_repository(tmp_path)
    step = '      - action: {{name: someone/echo, tag: {tag}, git: "{url}"}}\n'
    head = "name: p\njobs:\n  j:\n    steps:\n"
    repo.write("dt.yml", head + step.format(tag="latest", url=url) + "        inputs: {word: x}\n")
    repo.commit()
    assert repo.run("run", "-f", "dt.yml").code == 0
    assert repo.steps()["j.step-1"]["action_commit"]
    repo.write("dt.yml", head + step.format(tag="v9", url=url) + "        inputs: {word: x}\n")
    result = repo.run("validate", "-f", "dt.yml")
    assert result.code == 2
    assert result.err.startswith(
        f"conveyor: error: dt.yml:5:9: cannot use action someone/echo@v9: git cannot fetch "
        f"v9 of {url} ("
    )


def test_an_action_outside_the_project_is_keyed_on_its_code(repo: Repo, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "double"
    shared.mkdir(parents=True)
    (shared / "action-datatorch.yaml").write_text(
        "name: Double\ninputs:\n  n: {type: integer, required: true}\n"
        "outputs:\n  twice: {type: integer}\nruns:\n  using: python\n  main: double.py\n"
    )
    code = "import json, sys\nprint('::twice::' + json.dumps(json.loads(sys.argv[1])['n'] * 2))\n"
    (shared / "double.py").write_text(code)
    repo.write(
        "dt.yml",
        """\
        name: outside
        jobs:
          j:
            steps:
              - id: double
                action: ../shared/double
                cache: true
                inputs: {n: 21}
        """,
    )
    repo.commit()
    assert repo.run("run", "-f", "dt.yml").code == 0
    assert repo.run("run", "-f", "dt.yml").code == 0
    assert repo.steps()["j.double"]["cached"]
    (shared / "double.py").write_text(code.replace("* 2", "* 3"))
    assert repo.run("run", "-f", "dt.yml").code == 0
    assert not repo.steps()["j.double"]["cached"]
    assert "::twice::63" in repo.run("logs", "latest", "j.double").out
