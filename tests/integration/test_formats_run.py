"""Foreign pipeline files run end to end: found by name, refused with file:line, the
run status reaching notification steps, secrets, image steps without a runtime."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.sdk.project import Project
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

FORMATS = Path(__file__).parents[1] / "formats"

DRONE = """\
kind: pipeline
name: ci
steps:
  - name: build
    image: python:3.11-slim
    commands:
      - echo "token=$TOKEN mode=$MODE" > build.txt
    environment:
      MODE: release
      TOKEN:
        from_secret: ci_token
  - name: flaky
    commands:
      - exit 3
    failure: ignore
  - name: test
    commands:
      - test "$FAIL" != 1
    environment:
      FAIL: 0
  - name: on-failure
    commands:
      - echo "$DRONE_BUILD_STATUS" > failure.txt
    when:
      status: failure
  - name: notify
    image: plugins/slack:1.4
    settings:
      channel: dev
      recipients: [ann, bob]
      template: {title: done}
      webhook:
        from_secret: hook
    when:
      status: [success, failure]
"""

HOST = """\
[containers]
runtime = "none"
on_missing = "host"
[containers.plugins]
"plugins/slack" = "env | grep -E '^(DRONE_BUILD_STATUS|PLUGIN_)' | sort > notify.txt"
"""
SECRETS = {"ci_token": "s3cret", "hook": "https://hooks.invalid/x"}


def test_an_image_step_fails_in_one_sentence_without_a_container_runtime(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\n')
    repo.commit()
    result = repo.run("run", env=SECRETS)
    assert result.code == 1
    steps = repo.steps()
    assert steps["ci.build"]["status"] == "failed"
    assert steps["ci.build"]["error"] == (
        "step ci.build asks for the image python:3.11-slim, but no container runtime is "
        'configured; to run it on the host instead, set `on_missing = "host"` under '
        "[containers] in .conveyor/config.toml; or, to run it in its image, install podman "
        "(`apt-get install podman runc`, or scripts/engines/podman.sh install) with "
        '`runtime = "auto"` (the default) under [containers]'
    )


def test_a_drone_file_runs_on_the_host_when_asked(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.write(".conveyor/config.toml", HOST)
    repo.commit()
    result = repo.run("run", env=SECRETS)
    assert result.code == 0, result.err
    steps = repo.steps()
    assert steps["ci.flaky"]["status"] == "failed"  # failure: ignore keeps the run green
    assert steps["ci.on-failure"]["status"] == "skipped"
    assert (repo.path / "build.txt").read_text() == "token=s3cret mode=release\n"
    assert (repo.path / "notify.txt").read_text().splitlines() == [
        "DRONE_BUILD_STATUS=success",
        "PLUGIN_CHANNEL=dev",
        "PLUGIN_RECIPIENTS=ann,bob",
        'PLUGIN_TEMPLATE={"title":"done"}',
        "PLUGIN_WEBHOOK=https://hooks.invalid/x",
    ]
    # provenance: the image asked for and where it ran instead
    assert steps["ci.build"]["image"] == "python:3.11-slim"
    assert steps["ci.build"]["container"] == "host"
    # CI steps always run again (they declare no inputs or outputs)
    again = repo.run("run", env=SECRETS)
    assert again.code == 0
    assert not any(s["cached"] for s in repo.steps().values())


def test_notification_steps_see_the_failure(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE.replace("FAIL: 0", "FAIL: 1"))
    repo.write(".conveyor/config.toml", HOST)
    repo.commit()
    result = repo.run("run", env=SECRETS)
    assert result.code == 1
    steps = repo.steps()
    assert steps["ci.test"]["status"] == "failed"
    assert steps["ci.on-failure"]["status"] == "succeeded"
    assert (repo.path / "failure.txt").read_text() == "failure\n"
    assert "DRONE_BUILD_STATUS=failure" in (repo.path / "notify.txt").read_text()


def test_a_missing_secret_of_a_drone_step_is_empty_as_drone_leaves_it(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.write(".conveyor/config.toml", HOST)
    repo.commit()
    result = repo.run("run", env={"hook": "x"})
    assert result.code == 0, result.err
    assert "the secret 'ci_token' is not set: TOKEN of step ci.build is empty" in result.err
    assert "export ci_token=" in result.err
    assert (repo.path / "build.txt").read_text() == "token= mode=release\n"
    events = Project(repo.path).records.events(repo.show()["id"])
    recorded = [e.data["message"] for e in events if e.kind == "warning"]
    assert any("'ci_token' is not set" in m for m in recorded)  # in the run's record


def test_a_missing_secret_of_a_native_step_is_bad_input(repo: Repo) -> None:
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n      - run: echo $TOKEN\n        secrets: {TOKEN: ci_token}\n"
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 2
    assert "secret 'ci_token', which is not set" in result.err
    assert "export ci_token=" in result.err


def test_pipeline_files_are_found_in_order(repo: Repo) -> None:
    repo.write(
        ".drone.yml", "kind: pipeline\nname: drone\nsteps:\n  - name: a\n    commands: [echo]\n"
    )
    repo.commit()
    assert repo.run("plan", "--json").json()["pipeline"] == "drone"
    repo.write(
        ".dotscience.yml", "kind: pipeline\nname: ds\nafter:\n  - name: a\n    commands: [echo]\n"
    )
    assert repo.run("plan", "--json").json()["pipeline"] == "ds"
    repo.write("conveyor.yml", "name: native\njobs:\n  a:\n    steps:\n      - run: echo\n")
    assert repo.run("plan", "--json").json()["pipeline"] == "native"
    for name, pipeline in ((".drone.yml", "drone"), (".dotscience.yml", "ds")):
        assert repo.run("plan", "--json", "-f", name).json()["pipeline"] == pipeline
        assert repo.run("-f", name, "plan", "--json").json()["pipeline"] == pipeline
    result = repo.run("validate", "--json", "-f", ".drone.yml")
    assert result.json()["format"] == "drone"


def test_convert_writes_a_conveyor_yml_with_the_same_plan(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    converted = repo.run("convert", "-f", ".drone.yml", "-o", "conveyor.yml")
    assert converted.code == 0, converted.err
    native = repo.run("plan", "--json", "-f", "conveyor.yml")
    drone = repo.run("plan", "--json", "-f", ".drone.yml")
    assert native.code == drone.code == 0
    assert native.json() == drone.json()


def test_the_plan_cache_tells_formats_apart(repo: Repo) -> None:
    text = "kind: pipeline\nname: x\nsteps:\n  - name: a\n    commands: [echo a > a.txt]\n"
    repo.write(".drone.yml", text)
    repo.commit()
    assert repo.run("run").code == 0
    # the same bytes as a native file are not a valid conveyor.yml: no stale plan is served
    repo.write("conveyor.yml", text)
    result = repo.run("run")
    assert result.code == 2
    assert "conveyor.yml:1:1: unknown key 'kind'" in result.err


@pytest.mark.parametrize("name", sorted(p.name for p in (FORMATS / "bad").iterdir()))
def test_bad_files_exit_2_with_file_line_col(repo: Repo, name: str) -> None:
    case = FORMATS / "bad" / name
    shutil.copytree(case, repo.path, dirs_exist_ok=True)  # with its actions, if any
    (source,) = [p for p in case.iterdir() if p.is_file() and p.name != "error.txt"]
    result = repo.run("validate", "-f", source.name)
    assert result.code == 2
    expected = (case / "error.txt").read_text(encoding="utf-8").strip()
    assert result.err.strip() == f"conveyor: error: {expected}"
    assert "Traceback" not in result.err


DOTSCIENCE = """\
kind: pipeline
name: default
steps:
  - name: train
    commands:
      - test "$BROKEN" != 1
after:
  - name: notify
    image: dotscience/dotscience-slack-plugin:latest
    runPolicy: always
    settings:
      channel: ml
"""
SLACK = """\
[containers]
runtime = "none"
on_missing = "host"
[containers.plugins]
"dotscience/dotscience-slack-plugin" = "echo $PLUGIN_STATUS $DRONE_BUILD_STATUS > status.txt"
"""


@pytest.mark.parametrize(("broken", "expected"), [("0", "ok success"), ("1", "error failure")])
def test_a_dotscience_notification_reads_the_workload_status(
    repo: Repo, broken: str, expected: str
) -> None:
    repo.write(".dotscience.yml", DOTSCIENCE.replace("$BROKEN", broken))
    repo.write(".conveyor/config.toml", SLACK)
    repo.commit()
    result = repo.run("run")
    assert result.code == (0 if broken == "0" else 1), result.err
    assert repo.steps()["default.notify"]["status"] == "succeeded"
    assert (repo.path / "status.txt").read_text() == expected + "\n"
