"""Drone's and Dotscience's variables in a real run, and Drone's substitution in
environment values and plugin settings."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

DRONE = """\
kind: pipeline
name: release
steps:
  - name: vars
    commands:
      - env | grep -E '^(CI|DRONE|CI_[A-Z_]+|DRONE_(BRANCH|TAG|COMMIT_SHA|COMMIT_REF|BUILD_EVENT|REPO|BUILD_NUMBER|WORKSPACE))=' | sort > vars.txt
      - echo "$TARGET $PLUGIN_TAGS" > target.txt
    environment:
      TARGET: /gitea/${DRONE_TAG##v}
    settings:
      tags: ${DRONE_TAG%%.*}-${DRONE_COMMIT_SHA:0:7}
"""


def test_a_tag_run_sees_drones_variables_and_substitutes_them(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    subprocess.run(["git", "tag", "v1.2.3"], cwd=repo.path, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo.path, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = repo.run("run", "--event", "tag")
    assert result.code == 0, result.err
    assert repo.show()["number"] == 1
    lines = dict(line.split("=", 1) for line in (repo.path / "vars.txt").read_text().splitlines())
    assert lines["CI"] == "true" and lines["DRONE"] == "true"
    assert lines["DRONE_TAG"] == "v1.2.3"
    assert lines["DRONE_COMMIT_SHA"] == commit
    assert lines["DRONE_COMMIT_REF"] == "refs/tags/v1.2.3"
    assert lines["DRONE_BUILD_EVENT"] == "tag"
    assert lines["DRONE_BUILD_NUMBER"] == "1"  # the project's first run, as Drone counts
    assert lines["DRONE_BRANCH"] == ""
    assert lines["DRONE_REPO"] == repo.path.name
    assert lines["DRONE_WORKSPACE"] == str(repo.path)
    assert lines["CI_COMMIT_SHA"] == commit
    assert (repo.path / "target.txt").read_text() == f"/gitea/1.2.3 v1-{commit[:7]}\n"
    assert repo.run("run", "--event", "tag", "--force").code == 0
    again = dict(line.split("=", 1) for line in (repo.path / "vars.txt").read_text().splitlines())
    assert again["DRONE_BUILD_NUMBER"] == again["CI_BUILD_NUMBER"] == "2"


def test_a_dotscience_step_sees_its_task_id_and_both_status_variables(repo: Repo) -> None:
    repo.write(
        ".dotscience.yml",
        "kind: pipeline\nafter:\n  - name: report\n    commands:\n"
        '      - echo "$DOTSCIENCE_TASK_ID $PLUGIN_STATUS $PLUGIN_DOTSCIENCE_STATUS" > out.txt\n',
    )
    repo.commit()
    assert repo.run("run").code == 0
    assert (repo.path / "out.txt").read_text() == f"{repo.show()['id']} ok success\n"
