"""Runs a GitHub or GitLab webhook started post their status back to the commit, as the
forge's API documents it (checked by a local stand-in, ``forge_support``), and a
status the forge could not take is sent again later, even after a server restart."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.forge_support import Forge, serve_forge
from tests.integration.server_support import Server, git, make_server
from tests.integration.web_support import web_client

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-1"
TOKEN = "forge-token-0123456789"
GOOD = "jobs:\n  a:\n    steps:\n      - id: build\n        run: echo built\n"
BAD = "jobs:\n  a:\n    steps:\n      - id: build\n        run: echo built\n      - id: test\n        run: exit 3\n"


@pytest.fixture
def forge() -> Iterator[Forge]:
    found, httpd = serve_forge(TOKEN)
    yield found
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, repo: Repo, forge: Forge
) -> Iterator[Server]:
    database = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    srv = make_server(tmp_path, database)
    srv.start(extra=("--mirror-root", str(tmp_path), "--status-retry", "0.2"))
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", str(mirror))
    settings = {
        "webhook_secret": SECRET,
        "mirror": str(mirror),
        "forge_api": forge.url,
        "forge_token": TOKEN,
    }
    with srv.api("lead") as lead:
        answer = lead.put("/settings", json=settings)
        assert answer.status_code == 200, answer.text
        assert TOKEN not in answer.text
        shown = lead.get(f"{srv.url}/api/v1/projects/demo").json()
        assert shown["forge_token_set"] is True and TOKEN not in json.dumps(shown)
        assert "CONVEYOR_FORGE_TOKEN" not in lead.get("/secrets").json()
    yield srv
    srv.stop()


def _push(server: Server, repo: Repo, forge: str, pipeline: str) -> tuple[str, str]:
    """Commit ``pipeline``, put it in the mirror, deliver the forge's push hook; returns
    (run id, commit)."""
    repo.pipeline(pipeline)
    repo.commit()
    mirror = server.data.parent / "mirror.git"
    git(repo.path, "push", "-q", "-f", str(mirror), "HEAD:main")
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    if forge == "github":
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "after": head,
                "repository": {
                    "full_name": "octo/demo",
                    "html_url": "https://github.com/octo/demo",
                },
                "pusher": {"name": "octocat"},
            }
        ).encode()
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Event": "push"}
    else:
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "checkout_sha": head,
                "after": head,
                "project_id": 42,
                "project": {"id": 42, "web_url": "https://gitlab.example.com/team/demo"},
            }
        ).encode()
        headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"}
    answer = httpx.post(f"{server.url}/hooks/{forge}/demo", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"][0].split()[2], head


def test_a_github_run_posts_pending_then_success(server: Server, repo: Repo, forge: Forge) -> None:
    run_id, head = _push(server, repo, "github", GOOD)
    assert server.wait_run(run_id)["status"] == "succeeded"
    done = forge.wait_for("success")
    assert forge.problems == []
    assert (done["forge"], done["repo"], done["sha"]) == ("github", "octo/demo", head)
    assert done["target_url"] == f"{server.url}/ui/p/demo/runs/{run_id}"
    assert done["context"] == "conveyor" and done["description"] == "Conveyor: succeeded"
    states = [a["state"] for a in forge.accepted]
    assert set(states) <= {"pending", "success"} and states[-1] == "success"
    # the lead's settings page lists the delivery and the statuses sent
    with web_client(server, "lead") as lead:
        page = lead.get("/ui/p/demo/settings").text
    deliveries = page.split('id="deliveries"')[1].split("</table>")[0]
    assert "<td>github</td><td>push</td>" in deliveries and f"run {run_id} queued" in deliveries
    sent = page.split('id="statuses"')[1].split("</table>")[0]
    assert f"<code>{run_id}</code>" in sent and "<td>success</td>" in sent and "HTTP 201" in sent
    assert TOKEN not in page
    # the run's page links its commit on the forge
    with web_client(server, "viewer") as viewer:
        run_page = viewer.get(f"/ui/p/demo/runs/{run_id}").text
    assert f'href="https://github.com/octo/demo/commit/{head}"' in run_page


def test_a_failed_github_run_names_the_failed_step(
    server: Server, repo: Repo, forge: Forge
) -> None:
    run_id, _ = _push(server, repo, "github", BAD)
    assert server.wait_run(run_id)["status"] == "failed"
    failed = forge.wait_for("failure")
    assert failed["description"] == "Conveyor: failed at step a.test"
    assert forge.problems == []


def test_a_gitlab_run_posts_its_states_with_the_private_token(
    server: Server, repo: Repo, forge: Forge
) -> None:
    run_id, head = _push(server, repo, "gitlab", BAD)
    assert server.wait_run(run_id)["status"] == "failed"
    failed = forge.wait_for("failed")
    assert forge.problems == []
    assert (failed["repo"], failed["sha"], failed["ref"], failed["name"]) == (
        "42",
        head,
        "main",
        "conveyor",
    )
    assert failed["target_url"].endswith(f"/ui/p/demo/runs/{run_id}")
    assert "a.test" in failed["description"]
    assert {a["state"] for a in forge.accepted} <= {"pending", "running", "failed"}
    with web_client(server, "viewer") as viewer:
        run_page = viewer.get(f"/ui/p/demo/runs/{run_id}").text
    assert f'href="https://gitlab.example.com/team/demo/-/commit/{head}"' in run_page


def test_a_forge_that_is_down_gets_the_status_after_a_restart(
    server: Server, repo: Repo, forge: Forge, tmp_path: Path
) -> None:
    forge.down = 10**6  # down until told otherwise
    run_id, _ = _push(server, repo, "github", GOOD)
    assert server.wait_run(run_id)["status"] == "succeeded"
    _wait(lambda: _outbox(server, run_id, "success")["attempts"] >= 2)  # retried, backing off
    server.stop()
    assert forge.accepted == []
    with forge.lock:
        forge.down = 0
    server.start(extra=("--mirror-root", str(tmp_path), "--status-retry", "0.2"))
    done = forge.wait_for("success")
    assert done["target_url"].endswith(f"/runs/{run_id}")
    assert forge.problems == []
    # the server records the send once the forge's answer is back: after the forge saw it
    _wait(lambda: _outbox(server, run_id, "success")["sent_at"] is not None)
    assert _outbox(server, run_id, "success")["next_at"] is None


def test_a_refusing_forge_is_not_asked_again(server: Server, repo: Repo, forge: Forge) -> None:
    with server.api("lead") as lead:
        assert lead.put("/settings", json={"forge_token": "a-wrong-token"}).status_code == 200
    run_id, _ = _push(server, repo, "github", GOOD)
    assert server.wait_run(run_id)["status"] == "succeeded"
    _wait(lambda: _outbox(server, run_id, "success")["next_at"] is None)
    row = _outbox(server, run_id, "success")
    assert row["attempts"] == 0 and "refused" in row["outcome"] and row["sent_at"] is None
    assert forge.accepted == [] and forge.problems


def _outbox(server: Server, run_id: str, state: str) -> dict[str, object]:
    """The newest row of the server's outbox for this run and state."""
    import sqlalchemy as sa

    from conveyor.server.config import ServerConfig

    url = ServerConfig(data=server.data, database=server.database).database_url
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT * FROM srv_forge_statuses WHERE run_id = :r AND state = :s"),
                {"r": run_id, "s": state},
            ).all()
    finally:
        engine.dispose()
    return dict(rows[-1]._mapping) if rows else {"attempts": 0, "next_at": 1.0}


def _wait(ready: object, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("not ready in time")


def test_a_run_cancelled_before_it_started_tells_the_forge(
    server: Server, repo: Repo, forge: Forge, tmp_path: Path
) -> None:
    server.stop()
    server.start(workers=0, extra=("--mirror-root", str(tmp_path), "--status-retry", "0.2"))
    run_id, _ = _push(server, repo, "github", GOOD)
    with server.api("lead") as lead:
        answer = lead.post(f"/runs/{run_id}/cancel")
        assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    cancelled = forge.wait_for("error")
    assert cancelled["description"] == "Conveyor: cancelled"
    assert cancelled["target_url"].endswith(f"/runs/{run_id}")
    assert forge.problems == []
