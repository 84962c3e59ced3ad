"""Commit statuses: the forge's words for run states, descriptions, links, backoff."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus
from conveyor.errors import UsageError
from conveyor.server.db.statuses import ForgeLink, OwedStatus
from conveyor.server.forge import (
    check_api,
    commit_url,
    delay,
    describe,
    link_from_push,
    request_of,
)

SHA = "a" * 40


def test_a_failure_names_its_first_failed_step_within_140_characters() -> None:
    assert describe(RunStatus.FAILED, ["train.fit"]) == "Conveyor: failed at step train.fit"
    many = describe(RunStatus.FAILED, ["x" * 200, "b"])
    assert len(many) == 140 and many.endswith("…")
    assert describe(RunStatus.FAILED, ["a", "b", "c"]).endswith("a (and 2 more)")
    assert describe(RunStatus.SUCCEEDED, []) == "Conveyor: succeeded"


def test_retries_double_up_to_a_ceiling() -> None:
    assert [delay(n, 5.0) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert delay(30, 5.0) == 600.0


def test_a_payload_without_a_plain_repository_gives_no_link() -> None:
    assert link_from_push("github", {"repository": {"full_name": "../x"}}, {}, SHA, "r") is None
    assert link_from_push("gitlab", {"project_id": "1/../2"}, {}, SHA, "r") is None
    github = link_from_push("github", {"repository": {"full_name": "o/r"}}, {}, SHA, "r")
    assert github == ForgeLink("github", "https://api.github.com", "o/r", SHA, "r")
    gitlab = link_from_push("gitlab", {"project_id": 7}, {"forge_api": "http://gl"}, SHA, "r")
    assert gitlab == ForgeLink("gitlab", "http://gl", "7", SHA, "r")


def test_the_commits_page_comes_from_the_payloads_web_address() -> None:
    hub = {"repository": {"full_name": "o/r", "html_url": "https://github.com/o/r"}}
    github = link_from_push("github", hub, {}, SHA, "r")
    assert github is not None and github.web == "https://github.com/o/r"
    assert commit_url(github) == f"https://github.com/o/r/commit/{SHA}"
    lab = {"project_id": 7, "project": {"web_url": "https://gl.example/team/demo/"}}
    gitlab = link_from_push("gitlab", lab, {}, SHA, "r")
    assert (
        gitlab is not None and commit_url(gitlab) == f"https://gl.example/team/demo/-/commit/{SHA}"
    )
    # a page address that is not a plain http(s) URL gives no link, the status still goes
    for web in ("javascript:alert(1)", "https://u:p@github.com/o/r", "//evil", "https://h/?q", 7):
        link = link_from_push(
            "github", {"repository": {**hub["repository"], "html_url": web}}, {}, SHA, "r"
        )
        assert link is not None and link.web == "" and commit_url(link) is None, web
    bare = link_from_push("github", {"repository": {"full_name": "o/r"}}, {}, SHA, "r")
    assert bare is not None and commit_url(bare) is None


@pytest.mark.parametrize(
    "url", ["ftp://x", "https://user:pw@host", "https://h/?q=1", "host", "https://"]
)
def test_a_forge_api_is_a_plain_http_url(url: str) -> None:
    with pytest.raises(UsageError):
        check_api(url)


def test_each_forge_gets_its_documented_call() -> None:
    link = ForgeLink("gitlab", "https://gl.example/", "12", SHA, "refs/tags/v1")
    owed = OwedStatus(1, "demo", "r1", link, "failed", "Conveyor: failed", "http://s/r1", 0)
    url, headers, body = request_of(owed, "tok")
    assert url == f"https://gl.example/api/v4/projects/12/statuses/{SHA}"
    assert headers["PRIVATE-TOKEN"] == "tok" and body["ref"] == "v1" and body["name"]
    github = OwedStatus(
        1, "demo", "r1", ForgeLink("github", "https://api", "o/r", SHA, "x"), "success", "d", "u", 0
    )
    url, headers, body = request_of(github, "tok")
    assert url == f"https://api/repos/o/r/statuses/{SHA}"
    assert headers["Authorization"] == "Bearer tok" and body["context"] == "conveyor"


def test_a_newer_state_supersedes_an_older_one_still_owed(tmp_path: Path) -> None:
    from conveyor.server.db.database import open_database
    from conveyor.server.db.statuses import Statuses

    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    statuses = Statuses(db.engine)
    link = ForgeLink("github", "https://api", "o/r", SHA, "refs/heads/main")
    statuses.add("demo", "r1", link, "pending", "Conveyor: queued", "http://s/r1")
    (pending,) = statuses.claim_due()
    statuses.retry(pending.id, 1, 0.0, "HTTP 503; will retry")  # the forge was down
    statuses.add("demo", "r1", link, "success", "Conveyor: succeeded", "http://s/r1")
    assert [owed.state for owed in statuses.claim_due()] == ["success"]
    rows = {row["state"]: row for row in statuses.for_run("r1")}
    assert rows["pending"]["next_at"] is None and "superseded" in rows["pending"]["outcome"]
    # a send of the old state that was under way when the new one came stays closed
    statuses.retry(pending.id, 2, 0.0, "HTTP 503; will retry")
    assert statuses.claim_due() == []
    db.close()


def test_closed_statuses_are_forgotten_after_a_while(tmp_path: Path) -> None:
    import time

    from conveyor.server.db.database import open_database
    from conveyor.server.db.statuses import Statuses

    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    statuses = Statuses(db.engine)
    link = ForgeLink("gitlab", "https://gl", "1", SHA, "refs/heads/main")
    statuses.add("demo", "sent", link, "success", "d", "u")
    statuses.add("demo", "owed", link, "pending", "d", "u")
    (first, second) = statuses.claim_due()
    statuses.sent(first.id, "HTTP 201")
    statuses.retry(second.id, 1, time.time() + 3600, "HTTP 503; will retry")
    assert statuses.prune(time.time() + 1) == 1, "only the closed row goes"
    assert statuses.for_run("sent") == [] and len(statuses.for_run("owed")) == 1
    db.close()
