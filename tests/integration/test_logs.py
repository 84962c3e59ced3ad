"""`conveyor logs` and the log API with --tail and --since: real runs, real files, a
real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, run_ids

pytestmark = pytest.mark.integration

PIPELINE = """\
jobs:
  a:
    steps:
      - id: many
        run: for i in $(seq 1 1000); do echo "line $i"; done
      - id: one
        run: printf 'only\\nlast without a break'
"""
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


def _run(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.out + result.err


def test_tail_prints_the_last_lines_of_a_step_and_of_every_step(repo: Repo) -> None:
    _run(repo)
    whole = repo.run("logs", "latest", "a.many")
    assert whole.code == 0 and whole.out.count("\n") == 1000
    three = repo.run("logs", "latest", "a.many", "--tail", "3")
    assert three.code == 0 and three.out == "line 998\nline 999\nline 1000\n", three.err
    last = repo.run("logs", "latest", "a.one", "--tail", "1")
    assert last.out == "last without a break"
    every = repo.run("logs", "latest", "--tail", "1")
    assert every.code == 0
    assert every.out == "a.many │ line 1000\na.one │ last without a break\n"
    assert repo.run("logs", "latest", "a.many", "--tail", "0").out == ""


def test_since_shows_the_steps_that_ran_since_then(repo: Repo) -> None:
    _run(repo)
    recent = repo.run("logs", "latest", "--since", "10m")
    assert recent.code == 0 and recent.out.count("\n") == 1002
    later = repo.run("logs", "latest", "--since", FUTURE)
    assert later.code == 0 and later.out == ""
    assert "no step of run" in later.err and "ran since" in later.err
    one = repo.run("logs", "latest", "a.one", "--since", FUTURE)
    assert one.code == 0 and one.out == "" and "last ran before" in one.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tail", "-1"), "-1 is not in the range"),
        (("--tail", "many"), "'many' is not a valid integer"),
        (("--since", "garbage"), "'garbage' is neither a duration like 10m nor an ISO time"),
        (("--since", "-5m"), "is neither a duration"),
    ],
)
def test_bad_tail_and_since_exit_2_in_one_sentence(
    repo: Repo, args: tuple[str, ...], message: str
) -> None:
    _run(repo)
    result = repo.run("logs", "latest", "a.many", *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err


def _push(repo: Repo, server: Server) -> str:
    repo.pipeline(PIPELINE)
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    repo.commit()
    ids = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    assert len(ids) == 1
    assert server.wait_run(ids[0])["status"] == "succeeded"
    return ids[0]


def test_the_api_and_the_remote_cli_take_tail_and_since(repo: Repo, server: Server) -> None:
    run_id = _push(repo, server)
    path = f"/runs/{run_id}/logs/a.many"
    with server.api("viewer") as viewer:
        assert viewer.get(path, params={"tail": 2}).text == "line 999\nline 1000\n"
        assert viewer.get(path, params={"tail": 0}).text == ""
        assert viewer.get(path, params={"since": "1h"}).text.count("\n") == 1000
        assert viewer.get(path, params={"since": FUTURE}).text == ""
        for params in ({"tail": -1}, {"tail": 10**12}, {"tail": "x"}, {"since": "x" * 100}):
            refused = viewer.get(path, params=params)
            assert refused.status_code == 422, (params, refused.text)
        garbage = viewer.get(path, params={"since": "garbage"})
        assert garbage.status_code == 422
        assert garbage.json()["detail"] == (
            "since 'garbage' is neither a duration like 10m nor an ISO time like 2026-12-02T14:00"
        )
    env = {"CONVEYOR_TOKEN": server.tokens["viewer"]}
    tail = repo.run("logs", run_id, "a.many", "--remote", "--tail", "2", env=env)
    assert tail.code == 0 and tail.out == "line 999\nline 1000\n", tail.err
    every = repo.run("logs", run_id, "--remote", "--tail", "1", env=env)
    assert every.out == "a.many │ line 1000\na.one │ last without a break\n", every.err
    later = repo.run("logs", run_id, "--remote", "--since", FUTURE, env=env)
    assert later.code == 0 and later.out == "", later.err
    bad = repo.run("logs", run_id, "--remote", "--since", "garbage", env=env)
    assert bad.code == 2 and "is neither a duration" in bad.err and "Traceback" not in bad.err


def test_a_reader_that_stops_early_ends_the_stream_quietly(repo: Repo) -> None:
    """`conveyor logs ... | head -1` on a log far bigger than a pipe holds: the closed
    pipe ends the command at once with exit 0 and nothing on stderr."""
    repo.pipeline("jobs:\n  a:\n    steps:\n      - id: huge\n        run: seq 1 400000\n")
    repo.commit()
    assert repo.run("run").code == 0
    for args in (("a.huge",), ()):
        proc = repo.popen("logs", "latest", *args)
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().endswith("1\n")
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == ""
        proc.stderr.close()
