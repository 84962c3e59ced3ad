"""``conveyor ui``'s pages against a real project's records: the viewer's role on its one
project and nothing more (every form of the page matrix refused, every read answered),
no other project, no path out of the run's outputs, values escaped, the same headers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.ui_support import serve_ui
from tests.security.test_web import OPEN, PAGES, RUN, SERVER_ONLY

pytestmark = pytest.mark.integration

CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]
PIPELINE = """\
jobs:
  a:
    steps:
      - id: evil
        name: "<script>alert(1)</script>"
        run: |
          echo '<script>alert(3)</script>' > report.html
          printf '<img src=x onerror=alert(2)>\\n'
        outputs: [report.html]
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """A client of ``conveyor ui`` in a project named demo with one run, and the run."""
    path = tmp_path_factory.mktemp("local") / "demo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "conveyor.yml").write_text(PIPELINE)
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "<b>x</b>")
    done = subprocess.run([*CONVEYOR, "run"], cwd=path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (path / "report.html").write_text("<script>alert(10)</script>")
    for args in (["data", "create", "images"], ["data", "put", "images", "report.html"]):
        made = subprocess.run([*CONVEYOR, *args], cwd=path, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
    (path / "report.html").write_text("second")
    made = subprocess.run([*CONVEYOR, "data", "put", "images", "report.html"], cwd=path)
    assert made.returncode == 0
    shown = subprocess.run([*CONVEYOR, "show", "--json"], cwd=path, capture_output=True)
    run_id = json.loads(shown.stdout)["id"]
    with serve_ui(path) as url, httpx.Client(base_url=url.split("/ui/")[0], timeout=30) as test:
        yield test, run_id


@pytest.mark.parametrize(("method", "path", "needed"), PAGES)
def test_reads_are_answered_and_every_form_refused(
    client: tuple[httpx.Client, str], method: str, path: str, needed: str
) -> None:
    test_client, run_id = client
    response = test_client.request(method, path.replace(RUN, run_id), data={"csrf": "x"})
    if needed == "lead" or path in SERVER_ONLY:  # a laptop has no settings, members,
        # secrets or deployments: not served
        assert response.status_code == 404, (path, response.text)
        assert "Traceback" not in response.text
    elif method == "POST":
        assert response.status_code == 403, response.text
        assert "read-only" in response.text
    else:
        assert response.status_code in (200, 303), (path, response.text)
    assert "default-src 'none'" in response.headers["content-security-policy"] or (
        "/raw/" in path and response.headers["content-security-policy"].startswith("sandbox")
    )
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("method", "path"), sorted(OPEN))
def test_the_open_pages_need_no_sign_in_either(
    client: tuple[httpx.Client, str], method: str, path: str
) -> None:
    response = client[0].request(method, path, data={"token": "x"})
    assert response.status_code in (200, 303, 403), response.text
    assert "set-cookie" not in response.headers


def test_no_other_project_is_served(client: tuple[httpx.Client, str]) -> None:
    test_client, run_id = client
    for path in ("/ui/p/other", f"/ui/p/other/runs/{run_id}", "/ui/p/other/runs/x/live"):
        assert test_client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "a\\..\\b"]
)
def test_no_path_leaves_the_runs_outputs(client: tuple[httpx.Client, str], path: str) -> None:
    test_client, run_id = client
    for kind in ("artifacts", "preview", "raw"):
        response = test_client.get(f"/ui/p/demo/runs/{run_id}/{kind}/{path}")
        assert response.status_code in (400, 404), (kind, response.text)
        assert "root:" not in response.text


def test_values_from_the_run_and_its_log_are_escaped(client: tuple[httpx.Client, str]) -> None:
    test_client, run_id = client
    page = test_client.get(f"/ui/p/demo/runs/{run_id}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    runs = test_client.get("/ui/p/demo").text
    assert "<b>x</b>" not in runs
    log = test_client.get(f"/ui/p/demo/runs/{run_id}/steps/a.evil/log").text
    assert "<img" not in log and "&lt;img src=x" in log
