"""The forge token that posts commit statuses is the server's, not the pipeline's: a
step never sees it (neither in its environment nor through ``secrets:``), the API
never shows it back, and only a lead may set it or point statuses at another API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
TOKEN = "forge-token-never-seen-0451"
PIPELINE = """\
jobs:
  a:
    steps:
      - id: env
        run: env > env.txt
        outputs: [env.txt]
"""
ASKS = """\
jobs:
  a:
    steps:
      - id: asks
        run: echo "got $T"
        secrets: {T: CONVEYOR_FORGE_TOKEN}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("forge-token")
    srv = make_server(tmp, None)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(work, "checkout", "-q", "-b", "asks")
    (work / "conveyor.yml").write_text(ASKS)
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qam", "asks")
    git(work, "push", "-q", str(srv.data / "projects/demo/repo.git"), "main", "asks")
    srv.start(workers=1)
    with srv.api("lead") as lead:
        assert lead.put("/settings", json={"forge_token": TOKEN}).status_code == 200
    yield srv
    srv.stop()


def test_no_step_sees_the_forge_token(server: Server, tmp_path: Path) -> None:
    with server.api("member") as member:
        run_id = member.post("/runs", json={"ref": "main"}).json()["id"]
        assert server.wait_run(run_id)["status"] == "succeeded"
        env = member.get(f"/runs/{run_id}/artifacts/env.txt")
        asking = member.post("/runs", json={"ref": "asks"}).json()["id"]
        refused = server.wait_run(asking)
    assert env.status_code == 200 and "PATH=" in env.text
    assert TOKEN not in env.text and "CONVEYOR_FORGE_TOKEN" not in env.text
    assert refused["status"] == "failed" and TOKEN not in str(refused)
    assert "is not a secret of the project" in refused["error"]


def test_the_token_is_never_shown_and_only_a_lead_sets_it(server: Server) -> None:
    with server.api("lead") as lead:
        shown = lead.get(f"{server.url}/api/v1/projects/demo").text
        assert TOKEN not in shown and '"forge_token_set":true' in shown
        assert "CONVEYOR_FORGE_TOKEN" not in lead.get("/secrets").text
        named = lead.put("/secrets/CONVEYOR_FORGE_TOKEN", json={"value": "x" * 20})
        assert named.status_code in (400, 422), "a lead's secret cannot take the reserved name"
        bad = lead.put("/settings", json={"forge_api": "http://user:pw@evil.test"})
        assert bad.status_code == 400 and "not a forge API URL" in bad.text
    for who in ("viewer", "member"):
        with server.api(who) as caller:
            for body in ({"forge_token": "mine-0123456789"}, {"forge_api": "http://evil.test"}):
                assert caller.put("/settings", json=body).status_code == 403
