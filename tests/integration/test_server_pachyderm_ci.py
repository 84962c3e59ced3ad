"""The CI flow of a push to the server, against a real server on 127.0.0.1, real git,
podman and the registry of scripts/engines/registry.sh: a member's push of a Dockerfile
and a Pachyderm spec builds the image, tags it with the pushed commit, pushes it, creates
the pipeline with that tag and runs it (its output dataset gets a commit); a second push
that changes only the spec reuses the build, updates the pipeline to the new commit's
tag and reprocesses (the attacks: tests/security/test_server_pachyderm_ci.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
IMAGE = "conveyor-test/pushci"
# upper-cases each file of the datum: the image's own script, so the job shows the image ran
SCRIPT = 'for f in /pfs/images/*; do tr a-z A-Z < "$f" > "/pfs/out/$(basename "$f")"; done\n'


def edges_spec(description: str) -> str:
    spec = {
        "pipeline": {"name": "edges"},
        "description": description,
        "transform": {"image": f"{IMAGE}:dev", "cmd": ["sh", "/app/upper.sh"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    return json.dumps(spec, indent=2) + "\n"


@pytest.fixture
def registry() -> str:
    if not os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE") or shutil.which("podman") is None:
        engine_missing("podman", "podman is not configured for tests: scripts/engines/podman.sh")
    found = os.environ.get("CONVEYOR_TEST_REGISTRY")
    if not found:
        engine_missing("registry", "no image registry: scripts/engines/registry.sh up")
    assert found is not None
    return found


@pytest.fixture
def srv(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("pach-ci"), None)
    server.start(workers=0)
    yield server
    server.stop()


@pytest.fixture
def checkout(tmp_path: Path, srv: Server, registry: str) -> Iterator[Path]:
    work = tmp_path / "work"
    (work / "image").mkdir(parents=True)
    base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
    (work / "image" / "Dockerfile").write_text(f"FROM {base}\nCOPY upper.sh /app/upper.sh\n")
    (work / "image" / "upper.sh").write_text(SCRIPT)
    (work / "edges.json").write_text(edges_spec("first"))
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", srv.git_url("demo", "member"))
    yield work
    shas = git(work, "log", "--format=%H").stdout.split()
    tags = [f"{registry}/{IMAGE}:{sha}" for sha in shas]
    found = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", *tags],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if found:
        subprocess.run(["podman", "rmi", "--ignore", "-f", *sorted(set(found))], check=False)


def commit_and_push(work: Path, message: str) -> tuple[str, str]:
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", message)
    pushed = git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD").stdout.strip(), pushed.stderr


def until(check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("the server never got there")


def test_a_push_builds_pushes_updates_and_reprocesses(
    srv: Server, checkout: Path, registry: str
) -> None:
    with srv.api("lead") as lead, srv.api("viewer") as viewer:
        settings = {
            "pachyderm_ci": ["edges.json"],
            "pachyderm_ci_context": "image",
            "registry": registry,
        }
        base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
        put = lead.put("/settings", json=settings)
        assert put.status_code == 200, put.text
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        assert lead.put("/datasets/images/files/a.txt", content=b"alpha\n").is_success

        first, said = commit_and_push(checkout, "image and spec")
        assert f"pachyderm CI of {first[:12]} queued" in said, said
        # a repository of specs and no pipeline file: no failed run on each push
        assert "has no pipeline file" in said and "Pachyderm CI reads it" in said, said
        assert "failed at once" not in said, said
        done = until(lambda: [r for r in viewer.get("/ci").json() if r["state"] != "running"])
        record = done[0]
        assert record["state"] == "success", record
        assert record["commit"] == first and record["image"] == f"{registry}/{IMAGE}:{first}"
        assert record["digest"].startswith("sha256:")
        build = record["steps"][0]
        assert (build["name"], build["cached"]) == ("build", False)
        log = viewer.get(build["log"].removeprefix("/api/v1/projects/demo"))
        assert log.status_code == 200 and "build" in log.text
        pipeline = viewer.get("/pipelines/edges").json()
        assert pipeline["image"] == f"{registry}/{IMAGE}:{first}", pipeline
        assert viewer.get("/datasets/edges/files/a.txt").content == b"ALPHA\n"
        commits = viewer.get("/datasets/edges/log").json()
        # the job's provenance names the build: the pushed digest
        assert record["digest"] in json.dumps(commits), commits

        # only the spec changes: the same context, no rebuild; the new tag reprocesses
        (checkout / "edges.json").write_text(edges_spec("second"))
        second, said = commit_and_push(checkout, "describe it")
        assert f"pachyderm CI of {second[:12]} queued" in said, said
        done = until(
            lambda: (
                [r for r in viewer.get("/ci").json() if r["commit"] == second]
                if len([r for r in viewer.get("/ci").json() if r["state"] != "running"]) == 2
                else None
            )
        )
        again = done[0]
        assert again["state"] == "success", again
        assert again["steps"][0]["cached"] is True  # the context's build was reused
        assert again["image"] == f"{registry}/{IMAGE}:{second}"
        pipeline = viewer.get("/pipelines/edges").json()
        assert pipeline["image"] == f"{registry}/{IMAGE}:{second}", pipeline
        assert pipeline["version"] == 2
        later = viewer.get("/datasets/edges/log").json()
        assert len(later) == len(commits) + 1, later

        # a build that fails updates nothing: the pipeline keeps the last good image
        (checkout / "image" / "Dockerfile").write_text(f"FROM {base}\nRUN false\n")
        third, said = commit_and_push(checkout, "broken image")
        assert f"pachyderm CI of {third[:12]} queued" in said, said
        failed = until(
            lambda: [
                r
                for r in viewer.get("/ci").json()
                if r["commit"] == third and r["state"] != "running"
            ]
        )
        assert failed[0]["state"] == "failed", failed
        assert failed[0]["steps"][0]["state"] == "failed"
        kept = viewer.get("/pipelines/edges").json()
        assert (kept["image"], kept["version"]) == (f"{registry}/{IMAGE}:{second}", 2)
        assert len(viewer.get("/datasets/edges/log").json()) == len(later)

        # a push that changes neither the context nor a spec queues nothing
        (checkout / "README.md").write_text("notes\n")
        _, said = commit_and_push(checkout, "notes")
        assert "changes no image or spec" in said, said
        assert viewer.get("/runs").json()["runs"] == []  # four pushes, no run recorded


COUNT_SPEC = {  # on the server, not in pachyderm_ci: reads the flow's pipeline's output
    "pipeline": {"name": "count"},
    "transform": {"cmd": ["sh", "-c", "cat /pfs/edges/* > /pfs/out/all.txt"]},
    "input": {"pfs": {"repo": "edges", "glob": "/"}},
}


def test_a_flow_runs_the_pipelines_downstream_of_its_specs(
    srv: Server, checkout: Path, registry: str
) -> None:
    with srv.api("lead") as lead, srv.api("viewer") as viewer:
        settings = {
            "pachyderm_ci": ["edges.json"],
            "pachyderm_ci_context": "image",
            "registry": registry,
        }
        assert lead.put("/settings", json=settings).status_code == 200
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        assert lead.put("/datasets/images/files/a.txt", content=b"alpha\n").is_success
        commit_and_push(checkout, "image and spec")
        until(lambda: [r for r in viewer.get("/ci").json() if r["state"] != "running"])
        made = lead.post("/pipelines", json={"spec": json.dumps(COUNT_SPEC), "file": "c.json"})
        assert made.status_code == 201, made.text
        until(lambda: viewer.get("/datasets/count/files/all.txt").content == b"ALPHA\n")
        before = len(viewer.get("/datasets/count/log").json())

        # the image changes what edges writes: count, downstream, must follow
        (checkout / "image" / "upper.sh").write_text(SCRIPT.replace("tr a-z A-Z", "rev"))
        second, said = commit_and_push(checkout, "reverse instead")
        assert f"pachyderm CI of {second[:12]} queued" in said, said
        record = until(
            lambda: [
                r
                for r in viewer.get("/ci").json()
                if r["commit"] == second and r["state"] != "running"
            ]
        )[0]
        assert record["state"] == "success", record
        jobs = record["steps"][-1]["jobs"]
        assert [(j["pipeline"], j["downstream"]) for j in jobs] == [
            ("edges", False),
            ("count", True),
        ]
        assert viewer.get("/datasets/edges/files/a.txt").content == b"ahpla\n"
        assert viewer.get("/datasets/count/files/all.txt").content == b"ahpla\n"
        assert len(viewer.get("/datasets/count/log").json()) == before + 1


def test_a_failed_builds_log_and_error_name_no_path_of_the_server(
    srv: Server, checkout: Path, registry: str
) -> None:
    base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
    (checkout / "image" / "Dockerfile").write_text(f"FROM {base}\nCOPY missing.sh /app/\n")
    with srv.api("lead") as lead, srv.api("viewer") as viewer:
        settings = {
            "pachyderm_ci": ["edges.json"],
            "pachyderm_ci_context": "image",
            "registry": registry,
        }
        assert lead.put("/settings", json=settings).status_code == 200
        commit_and_push(checkout, "a COPY of a file that is not there")
        record = until(lambda: [r for r in viewer.get("/ci").json() if r["state"] != "running"])[0]
        assert record["state"] == "failed", record
        build = record["steps"][0]
        log = viewer.get(build["log"].removeprefix("/api/v1/projects/demo")).text
        assert "missing.sh" in log, log  # podman's own error, which names the context
        for text in (log, record["error"], build["error"], json.dumps(record)):
            assert str(srv.data) not in text and "ci-scratch" not in text, text
        assert "<context>" in log, log
