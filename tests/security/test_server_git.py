"""The server's git: the ``mirror`` setting and every value that reaches a git command line.

Attacks from the security issue (items 1, 2 and the webhook part of 13): a mirror that
names another project's repository (relative, through a symlink, as a ``file://`` URL),
option-shaped mirrors and refs (``--upload-pack=...``, ``-u...``) and transport URLs
(``ext::``) that would run a command on the server. Each is refused with a 4xx and one
sentence, and no command runs (no marker file appears).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server

repo = integration.repo  # the fixture: a git repository with a commit

pytestmark = pytest.mark.integration
SECRET = "hook-secret-9"


def _start(tmp_path: Path, *extra: str) -> Server:
    srv = make_server(tmp_path, None)
    srv.start(extra=extra)
    with httpx.Client(
        base_url=f"{srv.url}/api/v1", headers={"Authorization": f"Bearer {srv.tokens['admin']}"}
    ) as admin:
        assert admin.post("/projects", json={"name": "other"}).status_code == 201
    with srv.api("lead") as lead:
        assert lead.put("/settings", json={"webhook_secret": SECRET}).status_code == 200
    return srv


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = _start(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def rooted(tmp_path: Path) -> Iterator[Server]:
    """A server whose admin allows local mirrors under ``tmp_path/mirrors``."""
    (tmp_path / "mirrors").mkdir()
    srv = _start(tmp_path, "--mirror-root", str(tmp_path / "mirrors"))
    yield srv
    srv.stop()


def _secret_commit(srv: Server, repo: Repo) -> str:
    """A commit pushed to project ``other`` only: what an attacker in ``demo`` wants."""
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo secret code of other\n")
    repo.commit("other's code")
    git(repo.path, "push", "-q", srv.git_url("other", "admin"), "main")
    return git(repo.path, "rev-parse", "HEAD").stdout.strip()


def _hook(srv: Server, ref: str, commit: str) -> httpx.Response:
    body = json.dumps({"ref": ref, "after": commit}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}
    return httpx.post(f"{srv.url}/hooks/github/demo", content=body, headers=headers, timeout=60)


def _store_mirror(srv: Server, mirror: str) -> None:
    """Write the setting straight into the database, as a server before the fix kept it:
    the fetch must check again and not trust what is stored."""
    from conveyor.server.db.database import open_database

    db = open_database(f"sqlite:///{srv.data / 'server.db'}")
    try:
        row = db.accounts.project("demo") or {}
        settings = {**(row.get("settings") or {}), "mirror": mirror}
        db.accounts.update_project("demo", {"settings": settings})
    finally:
        db.close()


def _one_sentence(answer: httpx.Response) -> str:
    assert 400 <= answer.status_code < 500, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    return detail


def _hostile(tmp_path: Path, data: Path) -> list[str]:
    marker = tmp_path / "pwned"
    return [
        "../../other/repo.git",
        "../other/repo.git",
        f"--upload-pack=touch {marker}",
        f"--upload-pack=touch {marker};",
        "-uecho",
        f"-utouch {marker}",
        f"ext::sh -c touch% {marker}",
        f"file::{data}/projects/other/repo.git",
        f"file://{data}/projects/other/repo.git",
        f"{data}/projects/other/repo.git",
        f"ssh://-oProxyCommand=touch%20{marker}/x.git",
        f"-oProxyCommand=touch {marker}:x.git",
        "http://example.com/plain-http.git",
        "fd::0",
    ]


def test_hostile_mirrors_are_refused_with_one_sentence(server: Server, tmp_path: Path) -> None:
    with server.api("lead") as lead:
        for mirror in _hostile(tmp_path, server.data):
            answer = lead.put("/settings", json={"mirror": mirror})
            detail = _one_sentence(answer)
            assert "mirror" in detail, (mirror, detail)
            shown = lead.get(f"{server.url}/api/v1/projects/demo").json()
            assert shown["settings"].get("mirror") is None, mirror
    assert not (tmp_path / "pwned").exists()
    assert not (server.data / "projects/demo/repo.git/pwned").exists()


def test_a_stored_hostile_mirror_runs_nothing_and_fetches_nothing(
    server: Server, repo: Repo, tmp_path: Path
) -> None:
    commit = _secret_commit(server, repo)
    demo = server.data / "projects/demo/repo.git"
    for mirror in _hostile(tmp_path, server.data):
        _store_mirror(server, mirror)
        answer = _hook(server, "refs/heads/main", commit)
        detail = _one_sentence(answer)
        assert "mirror" in detail, (mirror, detail)
        assert git(demo, "cat-file", "-e", commit, check=False).returncode != 0, mirror
        assert not (tmp_path / "pwned").exists(), mirror
        assert not (demo / "pwned").exists(), mirror
    with server.api() as api:
        assert api.get("/runs").json()["runs"] == []


def test_a_local_mirror_under_an_allowed_root_works_and_nothing_else(
    rooted: Server, repo: Repo, tmp_path: Path
) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo mirrored\n")
    repo.commit()
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    roots = tmp_path / "mirrors"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(roots / "good.git"))
    (roots / "link.git").symlink_to(roots / "good.git")
    (roots / "evil.git").symlink_to(rooted.data / "projects/other/repo.git")
    (tmp_path / "elsewhere.git").mkdir()
    with rooted.api("lead") as lead:
        for mirror in (
            str(roots / "evil.git"),
            f"{roots}/../server-data/projects/other/repo.git",
            str(tmp_path / "elsewhere.git"),
            "mirrors/good.git",
        ):
            _one_sentence(lead.put("/settings", json={"mirror": mirror}))
        for mirror in ("https://example.com/x.git", "git@example.com:team/x.git"):
            assert lead.put("/settings", json={"mirror": mirror}).status_code == 200, mirror
        answer = lead.put("/settings", json={"mirror": str(roots / "link.git")})
        assert answer.status_code == 200, answer.text
    fetched = _hook(rooted, "refs/heads/main", head)
    assert fetched.status_code == 200, fetched.text
    # the link is moved into the data directory after the check: the fetch checks again
    secret = _secret_commit(rooted, repo)
    (roots / "link.git").unlink()
    (roots / "link.git").symlink_to(rooted.data / "projects/other/repo.git")
    detail = _one_sentence(_hook(rooted, "refs/heads/main", secret))
    assert "data directory" in detail
    demo = rooted.data / "projects/demo/repo.git"
    assert git(demo, "cat-file", "-e", secret, check=False).returncode != 0


def test_option_shaped_and_malformed_refs_are_refused(
    rooted: Server, repo: Repo, tmp_path: Path
) -> None:
    repo.commit()
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    mirror = tmp_path / "mirrors/good.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(mirror))
    marker = tmp_path / "pwned"
    with rooted.api("lead") as lead:
        assert lead.put("/settings", json={"mirror": str(mirror)}).status_code == 200
        for ref in (
            f"--upload-pack=touch {marker}",
            "refs/heads/a..b",
            "refs/heads/x:refs/conveyor/results/x",
            "refs/conveyor/results/main",
            "refs/heads/a b",
        ):
            detail = _one_sentence(_hook(rooted, ref, head))
            assert "ref" in detail, (ref, detail)
        for ref in (f"--upload-pack=touch {marker}", "-h", "main..x"):
            _one_sentence(lead.post("/runs", json={"ref": ref}))
            _one_sentence(lead.get("/pipeline", params={"ref": ref}))
        for branch in ("-x", "a..b", "a b"):
            _one_sentence(lead.post("/schedules", json={"cron": "0 3 * * *", "branch": branch}))
    assert not marker.exists()


def test_the_project_probe_through_webhooks_answers_the_same(server: Server) -> None:
    """Unknown project, project without a secret, bad signature: one answer for all."""
    with httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"Bearer {server.tokens['admin']}"},
    ) as admin:
        assert admin.post("/projects", json={"name": "nosecret"}).status_code == 201
    body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
    answers = []
    for kind, headers in (
        ("github", {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}),
        ("gitlab", {"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"}),
    ):
        for project in ("demo", "nosecret", "nope", "Bad_Name!"):
            answer = httpx.post(
                f"{server.url}/hooks/{kind}/{project}", content=body, headers=headers
            )
            answers.append((kind, answer.status_code, answer.text))
    github = {(s, t) for k, s, t in answers if k == "github"}
    gitlab = {(s, t) for k, s, t in answers if k == "gitlab"}
    assert len(github) == 1 and len(gitlab) == 1, answers
    assert next(iter(github))[0] == 401


@pytest.mark.parametrize(
    "call",
    ["fetch_mirror", "remote_commit", "clone_url", "clone_ref", "resolve", "worktree"],
)
def test_each_git_call_refuses_option_shaped_values(
    tmp_path: Path, call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each git command line the server (and its workers) builds, fed an option."""
    monkeypatch.chdir(tmp_path)  # an injected command writes here, not in the checkout
    from conveyor.errors import ConveyorError
    from conveyor.server import gitrepo
    from conveyor.vcs import git as vcs

    marker = tmp_path / "pwned"
    hostile = f"--upload-pack=touch {marker}"
    bare = tmp_path / "repo.git"
    gitrepo.init_bare(bare)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(
        work,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    git(work, "push", "-q", "origin", "HEAD:main")
    with pytest.raises(ConveyorError) if call != "resolve" else contextlib.nullcontext():
        if call == "fetch_mirror":
            from conveyor.server.mirrors import fetch_mirror

            fetch_mirror(bare, hostile, "refs/heads/main", tmp_path / "data", ())
        elif call == "remote_commit":
            assert vcs.remote_commit(hostile, None) is None
            raise ConveyorError("refused")  # None is its refusal
        elif call == "clone_url":
            vcs.clone_ref(hostile, None, tmp_path / "clone")
        elif call == "clone_ref":
            vcs.clone_ref(str(bare), hostile, tmp_path / "clone")
        elif call == "resolve":
            assert vcs.resolve(bare, "--all") is None
            assert vcs.resolve(bare, hostile) is None
        else:
            vcs.add_worktree(bare, hostile, tmp_path / "wt")
    assert not marker.exists()
    assert not (tmp_path / "wt").exists() and not (tmp_path / "clone").exists()


def test_the_mirror_forms_a_lead_may_use(tmp_path: Path) -> None:
    from conveyor.errors import UsageError
    from conveyor.server.mirrors import check_mirror

    data, root = tmp_path / "data", tmp_path / "mirrors"
    (data / "projects/other").mkdir(parents=True)
    (root / "a.git").mkdir(parents=True)
    for url in (
        "https://github.com/org/repo.git",
        "https://gitlab.example.com:8443/group/repo.git",
        "ssh://git@github.com/org/repo.git",
        "git://example.com/repo.git",
        "git@github.com:org/repo.git",
        "example.com:repo.git",
        "https://[::1]/repo.git",
    ):
        assert check_mirror(url, data, (root,)) == url
    real = str((root / "a.git").resolve())
    assert check_mirror(str(root / "a.git"), data, (root,)) == real
    assert check_mirror(f"file://{root}/a.git", data, (root,)) == real
    assert check_mirror(f"{root}/x/../a.git", data, (root,)) == real
    for refused in (f"{root}/../data/projects/other", str(root / "a.git")):
        with pytest.raises(UsageError):
            check_mirror(refused, data, (root, data) if "data" in refused else ())


def test_the_git_route_cannot_leave_the_project(server: Server, repo: Repo) -> None:
    """A viewer of ``demo`` asks git http-backend for ``other``'s refs through ``..``."""
    commit = _secret_commit(server, repo)
    auth = ("viewer", server.tokens["viewer"])
    for path in (
        "demo.git/../../other/repo.git/info/refs",
        "demo.git/..%2F..%2Fother%2Frepo.git/info/refs",
        "demo.git/%2E%2E/%2E%2E/other/repo.git/info/refs",
    ):
        answer = httpx.get(
            f"{server.url}/git/{path}", params={"service": "git-upload-pack"}, auth=auth
        )
        assert commit not in answer.text, path
