"""Drone's trigger/when/platform against a real checkout: HEAD's branch and tag, and
`conveyor run --event E` acting as another event; unmet steps are skipped with the reason."""

from __future__ import annotations

import platform
import subprocess

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

DRONE = """\
kind: pipeline
name: ci
trigger:
  branch: [main]
  event:
    exclude: [pull_request]
steps:
  - name: test
    commands: [echo tested > test.txt]
  - name: publish
    commands: [echo "published $DRONE_TAG" > publish.txt]
    when:
      event: tag
      ref: refs/tags/v*
  - name: always
    commands: [echo always > always.txt]
    depends_on: [publish]
---
kind: pipeline
name: nightly
trigger:
  event: [cron]
steps:
  - name: report
    commands: [echo report > report.txt]
---
kind: pipeline
name: elsewhere
platform:
  os: linux
  arch: riscv64
steps:
  - name: build
    commands: [echo never > never.txt]
"""


def test_a_push_on_main_runs_what_its_conditions_allow_and_says_why_the_rest_is_skipped(
    repo: Repo,
) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["ci.test"]["status"] == "succeeded"
    assert steps["ci.always"]["status"] == "succeeded"  # a skip taints nothing downstream
    assert steps["ci.publish"]["status"] == "skipped"
    assert steps["ci.publish"]["error"] == (
        "the step's event condition wants tag; this run's event is 'push'"
    )
    assert steps["nightly.report"]["error"] == (
        "the job's event condition wants cron; this run's event is 'push'"
    )
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert steps["elsewhere.build"]["error"] == (
        f"the job's arch condition wants riscv64; this run's arch is '{arch}'"
    )
    assert not (repo.path / "publish.txt").exists()
    assert not (repo.path / "report.txt").exists()
    assert repo.show()["status"] == "succeeded"


def test_event_tag_acts_as_the_tag_on_head(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    subprocess.run(["git", "tag", "v1.2"], cwd=repo.path, check=True)
    result = repo.run("run", "--event", "tag")
    assert result.code == 0, result.err
    steps = repo.steps()
    # a tag has no branch: the `ci` trigger's branch condition is unmet
    assert steps["ci.test"]["error"] == (
        "the job's branch condition wants main; this run's branch is none"
    )
    assert steps["ci.publish"]["status"] == "skipped"


def test_event_cron_runs_the_nightly_pipeline(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    result = repo.run("run", "--event", "cron")
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["nightly.report"]["status"] == "succeeded"
    assert (repo.path / "report.txt").read_text() == "report\n"
    assert steps["ci.test"]["status"] == "succeeded"  # cron is not excluded from `ci`
    assert steps["ci.publish"]["status"] == "skipped"


def test_an_unknown_event_is_refused_in_one_sentence(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    result = repo.run("run", "--event", "merge")
    assert result.code == 2
    assert "--event 'merge' is not an event; use one of push, tag, cron" in result.err
    assert "Traceback" not in result.err


def test_event_tag_without_a_tag_on_head_is_refused(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    result = repo.run("run", "--event", "tag")
    assert result.code == 2
    assert "--event tag needs a tag on HEAD's commit (git tag NAME)" in result.err


def test_cron_names_the_cron_job_of_event_cron(repo: Repo) -> None:
    repo.write(
        ".drone.yml",
        "kind: pipeline\nname: n\ntrigger:\n  event: [cron]\n  cron: [nightly]\n"
        "steps:\n  - name: report\n    commands: [echo $DRONE_CRON > cron.txt]\n",
    )
    repo.commit()
    assert repo.run("run", "--event", "cron", "--cron", "weekly").code == 0
    assert repo.steps()["n.report"]["error"] == (
        "the job's cron condition wants nightly; this run's cron is 'weekly'"
    )
    assert repo.run("run", "--event", "cron", "--cron", "nightly").code == 0
    assert (repo.path / "cron.txt").read_text() == "nightly\n"
    refused = repo.run("run", "--cron", "nightly")
    assert refused.code == 2 and "--cron names the cron job of `--event cron`" in refused.err
