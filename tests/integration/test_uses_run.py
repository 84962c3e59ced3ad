"""conveyor.yml steps that run reusable actions (`uses:`) end to end: from a git
repository pinned by commit (a moved tag is noticed), a python action with its own
requirements in a cached environment, inputs that never become shell text, outputs
flowing to a later step, and cache hits."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from conveyor.sdk.project import Project
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

GIT_USER = ["-c", "user.email=t@e.invalid", "-c", "user.name=T"]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


ECHO = """\
name: Echo
inputs:
  word: {type: string, required: true}
outputs:
  echoed: {description: the word shouted}
runs:
  command: 'echo "::echoed::\\"$INPUT_WORD{mark}\\""'
"""


def _echo_repository(base: Path) -> Path:
    origin = base / "acme" / "echo"
    origin.mkdir(parents=True)
    (origin / "action.yml").write_text(ECHO.replace("{mark}", "!"))
    _git(origin, "init", "-q", "-b", "main")
    _git(origin, "add", "-A")
    _git(origin, *GIT_USER, "commit", "-qm", "v1")
    _git(origin, "tag", "v1")
    return origin


def test_an_action_from_a_base_is_pinned_and_a_moved_tag_is_noticed(
    repo: Repo, tmp_path: Path
) -> None:
    origin = _echo_repository(tmp_path / "repos")
    first = _git(origin, "rev-parse", "v1^{commit}")
    repo.write(".conveyor/config.toml", f'[actions]\nbase = "{tmp_path / "repos"}"\n')
    repo.pipeline(
        """\
        name: from-git
        jobs:
          say:
            steps:
              - id: echo
                uses: acme/echo@v1
                with: {word: hi}
              - id: again
                uses: acme/echo@v1
                with:
                  word: ${{ steps.echo.outputs.echoed }}
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["say.echo"]["action_commit"] == first
    assert '::echoed::"hi!!"' in repo.run("logs", "latest", "say.again").out
    plan = repo.run("plan", "--json").json()
    assert plan["steps"][0]["action"] == {
        "ref": "acme/echo@v1",
        "commit": first,
        "inputs": {"word": "hi"},
        "outputs": ["echoed"],
    }
    # unchanged: both steps come from the cache, the outputs still flow
    again = repo.run("run")
    assert again.code == 0 and "moved" not in again.err
    assert all(s["cached"] for s in repo.steps().values())
    # the tag moves to a new commit: the run fetches it again and says so
    (origin / "action.yml").write_text(ECHO.replace("{mark}", "?"))
    _git(origin, *GIT_USER, "commit", "-qam", "v1 again")
    _git(origin, "tag", "-f", "v1")
    second = _git(origin, "rev-parse", "v1^{commit}")
    moved = repo.run("run")
    assert moved.code == 0, moved.err
    assert f"moved from commit {first} to {second}" in moved.err
    records = Project(repo.path).records
    events = records.events(repo.show()["id"])
    warnings = [e.data["message"] for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and f"moved from commit {first} to {second}" in warnings[0]
    steps = repo.steps()
    assert steps["say.echo"]["action_commit"] == second
    assert not steps["say.echo"]["cached"]
    assert '::echoed::"hi??"' in repo.run("logs", "latest", "say.again").out
    assert "moved" not in repo.run("run").err  # noticed once


def _wheel(directory: Path) -> str:
    name = "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr("tinydep/__init__.py", "def shout(text):\n    return text.upper() + '!'\n")
        info = "tinydep-1.0.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(
            f"{info}/RECORD",
            f"tinydep/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n",
        )
    return name


SHOUT = """\
import json, sys
import tinydep
inputs = json.loads(sys.argv[1])
with open(inputs["source"]) as handle:
    text = handle.read().strip()
print("::loud::" + json.dumps(tinydep.shout(text) * inputs["times"]))
"""


def test_a_python_action_runs_in_its_own_environment_and_inputs_stay_data(
    repo: Repo, tmp_path: Path
) -> None:
    action = repo.path / ".conveyor" / "actions" / "shout"
    action.mkdir(parents=True)
    wheel = _wheel(action)
    (action / "requirements.txt").write_text(f"--no-index\n./{wheel}\n")
    (action / "shout.py").write_text(SHOUT)
    (action / "action.yml").write_text(
        "name: Shout\ninputs:\n  source: {type: file, required: true}\n"
        "  times: {type: number, default: 1}\noutputs:\n  loud: {}\n"
        "runs:\n  python: shout.py\n  requirements: requirements.txt\n"
    )
    (repo.path / ".conveyor" / "actions" / "say").mkdir()
    (repo.path / ".conveyor" / "actions" / "say" / "action.yml").write_text(
        "name: Say\ninputs:\n  text: {type: string, required: true}\n  extra: {type: json}\n"
        'runs:\n  command: printf "%s|%s\\n" "$INPUT_TEXT" "$INPUT_EXTRA" > said.txt\n'
    )
    repo.write("words.txt", "hello\n")
    repo.write("x", "keep me\n")
    repo.pipeline(
        """\
        name: py
        jobs:
          j:
            steps:
              - id: shout
                uses: local/shout
                with: {source: words.txt, times: 2}
              - id: say
                uses: local/say
                outputs: [said.txt]
                with:
                  text: ${{ steps.shout.outputs.loud }} $(touch pwned); rm -rf x
                  extra: '{"k": "; rm -rf x"}'
        """
    )
    repo.commit()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = repo.run("run", env=env, timeout=300)
    assert result.code == 0, result.err
    said = (repo.path / "said.txt").read_text()
    assert said == 'HELLO!HELLO! $(touch pwned); rm -rf x|{"k": "; rm -rf x"}\n'
    assert not (repo.path / "pwned").exists() and (repo.path / "x").is_file()
    plan = repo.run("plan", "--json", env=env).json()
    command = plan["steps"][0]["command"]
    assert command.startswith(str(tmp_path / "cache" / "conveyor" / "action-envs"))
    assert plan["steps"][0]["inputs"] == [".conveyor/actions/shout", "words.txt"]
    assert repo.run("run", env=env).code == 0
    assert all(s["cached"] for s in repo.steps().values())
    # the file input is part of the cache key
    repo.write("words.txt", "bye\n")
    assert repo.run("run", env=env).code == 0
    assert not repo.steps()["j.shout"]["cached"]
    assert (repo.path / "said.txt").read_text().startswith("BYE!BYE! ")


def test_a_git_url_or_repository_path_with_a_ref(repo: Repo, tmp_path: Path) -> None:
    origin = _echo_repository(tmp_path / "repos")
    commit = _git(origin, "rev-parse", "v1^{commit}")
    repo.pipeline(
        f"""\
        name: urls
        jobs:
          j:
            steps:
              - id: url
                uses: {origin.as_uri()}@v1
                with: {{word: a}}
              - id: path
                uses: {origin}@main
                with: {{word: b}}
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["j.url"]["action_commit"] == commit == steps["j.path"]["action_commit"]
    bad = repo.pipeline(
        f"jobs:\n  j:\n    steps:\n      - uses: {origin}@v9\n        with: {{word: a}}\n"
    )
    assert bad.is_file()
    refused = repo.run("validate")
    assert refused.code == 2
    assert refused.err.startswith(
        f"conveyor: error: conveyor.yml:4:9: cannot use action {origin}@v9"
    )
