"""API hygiene on a real server (and the local CLI where secrets reach steps):

- secret names that change how a step executes (``PATH``, ``LD_PRELOAD``, ...) are refused
  with 422 on the server and exit 2 locally;
- the runs list pages with a cursor and a total, and refuses unknown filter values (422);
- steps come in the order they ran;
- every timestamp is ISO 8601; no response carries the server's data directory;
- cancelling a finished run is a conflict (409).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
PIPELINE = """\
jobs:
  a:
    steps:
      - id: zeta
        run: echo z
      - id: alpha
        run: echo a > out.txt
        outputs: [out.txt]
      - id: mid
        run: echo m && mkdir -p many && for i in 1 2 3 4 5; do echo $i > many/$i.txt; done
        outputs: [many]
"""
EXECUTION_NAMES = (
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "DYLD_INSERT_LIBRARIES",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "BASH_ENV",
    "ENV",
    "IFS",
    "HOME",
    "SHELLOPTS",
    "PS4",
)


def _commit(path: Path, pipeline: str) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "conveyor.yml").write_text(pipeline)
    git(path, "add", "-A")
    git(path, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with one worker and the pipeline above on ``main``."""
    tmp = tmp_path_factory.mktemp("api")
    srv = make_server(tmp, None)
    work = _commit(tmp / "work", PIPELINE)
    git(work, "push", "-q", str(srv.data / "projects/demo/repo.git"), "main")
    srv.start(workers=1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def finished(server: Server) -> str:
    """A run that ran to its end."""
    with server.api("member") as member:
        run_id = str(member.post("/runs", json={"ref": "main"}).json()["id"])
    assert server.wait_run(run_id)["status"] == "succeeded"
    return run_id


# -- secret names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", EXECUTION_NAMES)
def test_secret_names_that_change_execution_are_refused(server: Server, name: str) -> None:
    with server.api("lead") as lead:
        answer = lead.put(f"/secrets/{name}", json={"value": "/tmp/evil"})
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert name in detail and "changes how steps run" in detail
        assert detail.count(".") <= 2, "one sentence"
        assert name not in lead.get("/secrets").json()


def test_prefixed_execution_names_are_refused_and_plain_names_accepted(server: Server) -> None:
    with server.api("lead") as lead:
        for name in ("LD_AUDIT", "DYLD_LIBRARY_PATH", "PYTHONHOME", "BASH_FUNC_x"):
            assert lead.put(f"/secrets/{name}", json={"value": "value-1234"}).status_code == 422, (
                name
            )
        assert lead.put("/secrets/API_TOKEN", json={"value": "value-1234"}).status_code == 204
        assert lead.get("/secrets").json() == ["API_TOKEN"]
        assert lead.delete("/secrets/API_TOKEN").status_code == 204


def test_a_local_step_cannot_take_an_execution_variable_from_a_secret(tmp_path: Path) -> None:
    work = _commit(
        tmp_path / "local",
        "jobs:\n  a:\n    steps:\n      - run: echo hi\n        secrets: {LD_PRELOAD: EVIL}\n",
    )
    proc = subprocess.run(
        [sys.executable, "-c", "from conveyor.cli.main import main; main()", "run"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EVIL": "/tmp/evil.so"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "LD_PRELOAD changes how steps run" in proc.stderr, proc.stderr
    assert "conveyor.yml:5:" in proc.stderr and "Traceback" not in proc.stderr


# -- lists ------------------------------------------------------------------------------


def test_the_runs_list_pages_with_a_cursor_and_a_total(server: Server, finished: str) -> None:
    with server.api("member") as member:
        for _ in range(4):
            assert member.post("/runs", json={"ref": "main"}).status_code == 201
        everything = member.get("/runs", params={"limit": 500}).json()
        total = everything["total"]
        assert total == len(everything["runs"]) >= 5 and everything["next_cursor"] is None
        done = next(r for r in everything["runs"] if r["id"] == finished)  # its record's words
        assert done["number"] >= 1 and done["pipeline"] and done["executor"] == "local", done
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = member.get("/runs", params=params).json()
            assert page["total"] == total and len(page["runs"]) <= 2
            seen += [r["id"] for r in page["runs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == [r["id"] for r in everything["runs"]], "every run once, newest first"
    for run_id in seen:
        server.wait_run(run_id)


def test_the_artifacts_list_pages_with_a_cursor_and_a_total(server: Server, finished: str) -> None:
    with server.api("viewer") as viewer:
        everything = viewer.get(f"/runs/{finished}/artifacts").json()
        assert everything["total"] == 6 and everything["next_cursor"] is None
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 4}
        while True:
            page = viewer.get(f"/runs/{finished}/artifacts", params=params).json()
            assert page["total"] == 6 and len(page["files"]) <= 4
            seen += [f["path"] for f in page["files"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        bad = viewer.get(f"/runs/{finished}/artifacts", params={"cursor": "bm9wZQ=="})
        assert bad.status_code == 422, bad.text
    assert seen == [f["path"] for f in everything["files"]]
    assert seen[0] == "out.txt" and sorted(seen[1:]) == [f"many/{i}.txt" for i in range(1, 6)]


def test_the_runs_list_refuses_unknown_filters(server: Server, finished: str) -> None:
    with server.api("viewer") as viewer:
        bad = viewer.get("/runs", params={"status": "sucess"})
        assert bad.status_code == 422, bad.text
        assert "status" in bad.json()["detail"]
        cursor = viewer.get("/runs", params={"cursor": "nope"})
        assert cursor.status_code == 422, cursor.text
        good = viewer.get("/runs", params={"status": "succeeded"}).json()
        assert good["runs"] and all(r["status"] == "succeeded" for r in good["runs"])


def test_steps_come_in_the_order_they_ran(server: Server, finished: str) -> None:
    order = ["a.zeta", "a.alpha", "a.mid"]
    with server.api("viewer") as viewer:
        assert [s["id"] for s in viewer.get(f"/runs/{finished}/steps").json()] == order
        assert [s["id"] for s in viewer.get(f"/runs/{finished}").json()["steps"]] == order


# -- timestamps and paths ---------------------------------------------------------------


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, key)
    else:
        yield key, value


def test_timestamps_are_iso_8601_everywhere(server: Server, finished: str) -> None:
    with server.api("lead") as lead:
        assert lead.post("/schedules", json={"cron": "0 3 * * *"}).status_code == 201
        answers = [
            lead.get("/runs").json(),
            lead.get(f"/runs/{finished}").json(),
            lead.get(f"/runs/{finished}/steps").json(),
            lead.get("/schedules").json(),
        ]
    stamps = [(k, v) for a in answers for k, v in _walk(a) if k.endswith("_at")]
    assert {"created_at", "started_at", "ended_at", "next_at"} <= {k for k, _ in stamps}
    for key, value in stamps:
        if value is not None:
            assert isinstance(value, str), (key, value)
            assert datetime.fromisoformat(value).tzinfo is not None, (key, value)


def test_no_response_carries_a_server_path(server: Server, finished: str) -> None:
    data = str(server.data)
    with server.api("lead") as lead:
        texts = [
            lead.get("").text,
            lead.get("/pipeline").text,
            lead.get("/members").text,
            lead.get("/runs").text,
            lead.get(f"/runs/{finished}").text,
            lead.get(f"/runs/{finished}/steps").text,
            lead.get(f"/runs/{finished}/artifacts").text,
            lead.get("/lineage", params={"path": "out.txt"}).text,
            lead.get("/schedules").text,
        ]
        steps = lead.get(f"/runs/{finished}/steps").json()
    for text in texts:
        assert data not in text and str(Path(data).parent) not in text, text
    assert all(s["log"].startswith("/api/v1/") for s in steps), steps
    with server.api("viewer") as viewer:  # the log link works
        log = viewer.get(steps[0]["log"].removeprefix("/api/v1/projects/demo"))
        assert log.text == "z\n"


# -- cancel -----------------------------------------------------------------------------


def test_cancelling_a_finished_run_is_a_conflict(server: Server, finished: str) -> None:
    with server.api("lead") as lead:
        answer = lead.post(f"/runs/{finished}/cancel")
        assert answer.status_code == 409, answer.text
        assert "already succeeded" in answer.json()["detail"]
        assert lead.get(f"/runs/{finished}").json()["status"] == "succeeded"


# -- a run's metrics and params -----------------------------------------------------------


def test_a_runs_metrics_are_not_read_through_another_project(server: Server, finished: str) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as admin:
        assert admin.post("/projects", json={"name": "elsewhere"}).status_code == 201
        for route in ("metrics", "params"):
            assert admin.get(f"/projects/demo/runs/{finished}/{route}").status_code == 200
            other = admin.get(f"/projects/elsewhere/runs/{finished}/{route}")
            assert other.status_code == 404, other.text  # demo's run, not elsewhere's
            assert finished not in other.text or "has no run" in other.text


@pytest.mark.parametrize("run_id", ["..", "%2e%2e", "latest%2f..", "a" * 5000, "0000"])
def test_odd_run_ids_on_the_metrics_routes_are_refused_plainly(
    server: Server, finished: str, run_id: str
) -> None:
    with server.api("viewer") as viewer:
        for route in ("metrics", "params"):
            response = viewer.get(f"/runs/{run_id}/{route}")
            assert 400 <= response.status_code < 500, (run_id, response.status_code)


def test_a_run_number_names_only_the_projects_own_run(server: Server, finished: str) -> None:
    """Every project has a run #1: a number is looked up among the project's runs only."""
    import httpx

    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as admin:
        number = admin.get(f"/projects/demo/runs/{finished}").json()["number"]
        assert isinstance(number, int)
        mine = admin.get(f"/projects/demo/runs/%23{number}")
        assert mine.status_code == 200 and mine.json()["id"] == finished
        assert admin.post("/projects", json={"name": "numbered"}).status_code == 201
        other = admin.get(f"/projects/numbered/runs/%23{number}")
        assert other.status_code == 404, other.text
        assert other.json()["detail"] == f"project 'numbered' has no run #{number}"
        for odd in ("%23x", "%23-1", "%23" + "9" * 30, "%23"):
            answer = admin.get(f"/projects/demo/runs/{odd}")
            assert answer.status_code == 422, (odd, answer.text)
            assert "is not a run number" in answer.json()["detail"]
