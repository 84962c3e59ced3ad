"""Attacks on the CI flow of a push (``server/pachyderm_ci``), against a real server on
127.0.0.1 with real git, podman and registry: spec and context paths out of the tree in
the settings, settings changed by a member, a viewer's push, a Dockerfile that asks for a
host file, and a build context link out of the pushed tree. None reads a host file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
IMAGE = "conveyor-test/pushci-attack"
SPEC = json.dumps(
    {
        "pipeline": {"name": "edges"},
        "transform": {"image": f"{IMAGE}:dev", "cmd": ["true"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
)


@pytest.fixture
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("pach-ci-attacks"), None)
    server.start(workers=0)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that change nothing."""
    server = make_server(tmp_path_factory.mktemp("pach-ci-settings"), None)
    server.start(workers=0)
    yield server
    server.stop()


def _pending(srv: Server) -> list[dict[str, Any]]:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=srv.data).database_url)
    try:
        return db.pachyderm.pending()
    finally:
        db.close()


@pytest.mark.parametrize(
    "body",
    [
        {"pachyderm_ci": ["../other/edges.json"]},
        {"pachyderm_ci": ["/etc/passwd"]},
        {"pachyderm_ci": ["specs/../../x.json"]},
        {"pachyderm_ci": ["-rf"]},
        {"pachyderm_ci": ["a\nb.json"]},
        {"pachyderm_ci": [".git/config"]},
        {"pachyderm_ci_context": "../.."},
        {"pachyderm_ci_context": "/"},
        {"pachyderm_ci_branch": "main --force"},
        {"registry": "127.0.0.1:5000 --tls-verify=false"},
        {"registry": "evil/../x"},
    ],
)
def test_ci_settings_out_of_the_tree_are_refused(shared: Server, body: dict[str, Any]) -> None:
    with shared.api("lead") as lead:
        put = lead.put("/settings", json=body)
        assert put.status_code == 422, put.text
        assert "Traceback" not in put.text
        shown = lead.get(f"{shared.url}/api/v1/projects/demo")
        settings = shown.json()["settings"]
    assert not set(body) & set(settings)  # nothing stored


def test_only_a_lead_sets_the_ci_and_a_viewer_push_queues_nothing(
    srv: Server, tmp_path: Path
) -> None:
    for who in ("member", "viewer"):
        with srv.api(who) as client:
            assert client.put("/settings", json={"pachyderm_ci": ["a.json"]}).status_code == 403
    with srv.api("lead") as lead:
        assert lead.put("/settings", json={"pachyderm_ci": ["edges.json"]}).status_code == 200
    work = tmp_path / "work"
    work.mkdir()
    (work / "edges.json").write_text(SPEC)
    (work / "Dockerfile").write_text("FROM scratch\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "x")
    refused = git(work, "push", srv.git_url("demo", "viewer"), "main", check=False)
    assert refused.returncode != 0
    assert _pending(srv) == []


@pytest.fixture
def registry() -> str:
    if not os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE") or shutil.which("podman") is None:
        engine_missing("podman", "podman is not configured for tests: scripts/engines/podman.sh")
    found = os.environ.get("CONVEYOR_TEST_REGISTRY")
    if not found:
        engine_missing("registry", "no image registry: scripts/engines/registry.sh up")
    assert found is not None
    return found


def _push_ci(srv: Server, work: Path, registry: str) -> tuple[str, dict[str, Any]]:
    """The tree of ``work`` pushed by a member; the CI record of its commit."""
    with srv.api("lead") as lead:
        settings = {"pachyderm_ci": ["edges.json"], "registry": registry}
        assert lead.put("/settings", json=settings).status_code == 200
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
    (work / "edges.json").write_text(SPEC)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "x")
    git(work, "push", "-q", srv.git_url("demo", "member"), "main")
    sha = git(work, "rev-parse", "HEAD").stdout.strip()
    deadline = time.monotonic() + 300
    with srv.api("viewer") as viewer:
        while time.monotonic() < deadline:
            done = [r for r in viewer.get("/ci").json() if r["state"] != "running"]
            if done:
                return sha, done[0]
            time.sleep(0.5)
    raise AssertionError("the CI flow never ended")


def _remove_images(registry: str, sha: str) -> None:
    subprocess.run(
        ["podman", "rmi", "--ignore", "-f", f"{registry}/{IMAGE}:{sha}"],
        capture_output=True,
        check=False,
    )


def test_a_dockerfile_cannot_add_a_host_file(srv: Server, tmp_path: Path, registry: str) -> None:
    work = tmp_path / "work"
    (work / "etc").mkdir(parents=True)
    # ADD of an absolute path reads the context's own file, never the host's
    (work / "etc" / "passwd").write_text("the pushed tree's file\n")
    base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
    # and its RUN has podman's default capabilities: no CAP_SYS_ADMIN (no mount)
    run = "RUN grep CapEff /proc/self/status > /caps"
    (work / "Dockerfile").write_text(f"FROM {base}\nADD /etc/passwd /leak\n{run}\n")
    sha, record = _push_ci(srv, work, registry)
    try:
        assert record["state"] == "success", record
        shown = subprocess.run(
            [
                "podman",
                "run",
                "--rm",
                "--network",
                "none",
                record["image"],
                "cat",
                "/leak",
                "/caps",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown.split("\n")[0] == "the pushed tree's file"
        sys_admin = 1 << 21
        assert not int(shown.split()[-1], 16) & sys_admin, shown
    finally:
        _remove_images(registry, sha)


def test_a_dockerfile_asking_for_a_host_file_fails_its_build(
    srv: Server, tmp_path: Path, registry: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
    (work / "Dockerfile").write_text(f"FROM {base}\nADD /etc/hostname /leak\n")
    sha, record = _push_ci(srv, work, registry)
    _remove_images(registry, sha)
    assert record["state"] == "failed", record
    assert [(s["name"], s["state"]) for s in record["steps"]] == [("build", "failed")]
    with srv.api("viewer") as viewer:
        assert viewer.get("/pipelines").json() == []  # nothing updated


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd", "sub/../../x"])
def test_a_context_link_out_of_the_tree_is_refused(
    srv: Server, tmp_path: Path, registry: str, target: str
) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    os.symlink(target, work / "link")
    base = os.environ["CONVEYOR_TEST_PODMAN_IMAGE"]
    (work / "Dockerfile").write_text(f"FROM {base}\nCOPY link /leak\n")
    _, record = _push_ci(srv, work, registry)
    assert record["state"] == "failed" and record["steps"] == [], record  # nothing built
    assert "link out of the tree" in record["error"], record
    assert str(srv.data) not in record["error"]


def test_the_settings_page_sets_the_ci_and_refuses_a_path_out_of_the_tree(
    shared: Server,
) -> None:
    from tests.integration.web_support import csrf_of, web_client

    page = "/ui/p/demo/settings"
    with web_client(shared, "lead") as client:
        token = csrf_of(client.get(page).text)
        form = {"csrf": token, "pachyderm_ci": "edges.json, montage.json", "registry": "reg:5000"}
        saved = client.post(f"{page}/ci", data=form)
        assert saved.status_code == 303, saved.text
        shown = client.get(saved.headers["location"]).text
        assert "Pachyderm CI saved" in shown and "edges.json, montage.json" in shown
        bad = client.post(f"{page}/ci", data={**form, "pachyderm_ci": "../../etc/passwd"})
        assert bad.status_code == 422 and "not a path inside the repository" in bad.text
        off = client.post(f"{page}/ci", data={"csrf": token})
        assert off.status_code == 303
    with shared.api("lead") as lead:
        settings = lead.get(f"{shared.url}/api/v1/projects/demo").json()["settings"]
    assert settings["pachyderm_ci"] == [] and settings["registry"] == "reg:5000"
    with web_client(shared, "lead") as client:  # where the jobs run: server or worker only
        token = csrf_of(client.get(page).text)
        moved = client.post(f"{page}/ci", data={"csrf": token, "pachyderm_jobs": "worker"})
        assert moved.status_code == 303, moved.text
        assert '<option value="worker" selected>' in client.get(page).text
        odd = client.post(f"{page}/ci", data={"csrf": token, "pachyderm_jobs": "; rm -rf /"})
        assert odd.status_code == 400, odd.text  # refused; the setting stays "worker"
    with shared.api("lead") as lead:
        settings = lead.get(f"{shared.url}/api/v1/projects/demo").json()["settings"]
    assert settings["pachyderm_jobs"] == "worker"
    with web_client(shared, "member") as client:
        assert client.post(f"{page}/ci", data={"csrf": "x"}).status_code == 403


@pytest.mark.parametrize("path", ["/ci/..%2f..%2fetc/logs/build", "/ci/abc/logs/passwd"])
def test_ci_records_are_the_project_viewers_and_logs_are_named_steps(
    shared: Server, path: str
) -> None:
    with shared.api("viewer") as viewer:
        assert viewer.get("/ci").status_code == 200
        assert viewer.get(path).status_code == 404
    with shared.api("outsider") as outsider:
        assert outsider.get("/ci").status_code in (403, 404)
