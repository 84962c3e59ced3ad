"""The server's CLI: set-up commands, `conveyor run --remote`, `conveyor fetch --remote`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git

pytestmark = pytest.mark.integration


def test_set_up_commands_and_their_errors(repo: Repo, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = repo.run("server", "--data", data, "add-user", "ann", "--admin")
    assert added.code == 0, added.err
    token = added.out.strip()
    assert token.startswith("cvy_") and len(token) > 40
    assert token.encode() not in (tmp_path / "data/server.db").read_bytes(), "hashed at rest"
    project = repo.run("server", "--data", data, "add-project", "demo")
    assert project.code == 0 and "/git/demo.git" in project.out
    for args, message in (
        (("add-project", "demo"), "project 'demo' exists already"),
        (("add-project", "Bad/Name"), "not a valid project name"),
        (("grant", "demo", "nobody", "member"), "there is no user 'nobody'"),
        (("grant", "nope", "ann", "member"), "there is no project 'nope'"),
        (("add-user", "ann"), "user 'ann' exists already"),
    ):
        result = repo.run("server", "--data", data, *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err and "Traceback" not in result.err
    bad_role = repo.run("server", "--data", data, "grant", "demo", "ann", "king")
    assert bad_role.code == 2
    second = repo.run("server", "--data", data, "new-token", "ann").out.strip()
    assert second.startswith("cvy_") and second != token
    revoked = repo.run("server", "--data", data, "revoke-tokens", "ann")
    assert revoked.code == 0 and "revoked 2 token(s) of ann" in revoked.out


def test_run_remote_follows_the_run_and_fetch_remote_brings_outputs(
    repo: Repo, server: Server, tmp_path: Path
) -> None:
    repo.pipeline(
        "params:\n  n: 3\njobs:\n  a:\n    steps:\n"
        "      - run: mkdir -p out/d && echo ${{ params.n }} > out/n.txt && echo x > out/d/x.txt && echo n=${{ params.n }}\n"
        "        outputs: [out/n.txt, out/d]\n"
    )
    repo.write(
        ".conveyor/config.toml",
        f'[remote]\nurl = "{server.url}"\nproject = "demo"\n',
    )
    repo.commit()
    git(repo.path, "push", "-q", server.git_url(), "main")
    env = {"CONVEYOR_TOKEN": server.tokens["member"]}
    result = repo.run("run", "--remote", "-p", "n=7", "--json", env=env)
    assert result.code == 0, result.err
    run = result.json()
    assert run["status"] == "succeeded" and run["trigger"] == "manual"
    assert "✓ a.step-1" in result.err
    page = f"{server.url}/ui/p/demo/runs/{run['id']}"
    assert run["url"] == page
    named = [line for line in result.err.splitlines() if run["id"] in line]
    assert len(named) == 2 and all(line.endswith(page) for line in named), result.err
    target = tmp_path / "fetched"
    fetched = repo.run("fetch", run["id"], "--remote", "--to", str(target), env=env)
    assert fetched.code == 0, fetched.err
    assert fetched.out.strip().endswith(page), fetched.out
    assert (target / "out/n.txt").read_text() == "7\n"
    assert (target / "out/d/x.txt").read_text() == "x\n"
    # with a remote configured, a run this clone does not know is fetched from the server
    plain = repo.run("fetch", run["id"], "--to", str(tmp_path / "plain"), env=env)
    assert plain.code == 0, plain.err
    assert (tmp_path / "plain/out/n.txt").read_text() == "7\n"

    listed = repo.run("runs", "--remote", "--json", env=env)
    assert listed.code == 0 and listed.json()[0]["id"] == run["id"]
    assert listed.json()[0]["url"] == page
    table = repo.run("runs", "--remote", env=env)
    assert table.code == 0 and table.out.splitlines()[0].endswith(page), table.out
    log = repo.run("logs", run["id"], "a.step-1", "--remote", env=env)
    assert log.code == 0 and log.out == "n=7\n", log.err
    latest = repo.run("logs", "latest", "--remote", env=env)
    assert latest.code == 0 and latest.out == "a.step-1 │ n=7\n", latest.err

    no_token = repo.run("run", "--remote", env={"CONVEYOR_TOKEN": ""})
    assert no_token.code == 2 and "set CONVEYOR_TOKEN" in no_token.err
    viewer = repo.run("run", "--remote", env={"CONVEYOR_TOKEN": server.tokens["viewer"]})
    assert viewer.code == 2 and "needs the member role" in viewer.err
    missing = repo.run("fetch", "nope", "--remote", env=env)
    assert missing.code == 2 and "has no run 'nope'" in missing.err
