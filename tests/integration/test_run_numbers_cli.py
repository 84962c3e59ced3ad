"""A run named by its number on the command line (`#2`, or `2`): `show`, `runs` and the
commands that take a RUN; an unknown number is one sentence and exit code 2."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration


def test_runs_are_named_by_their_numbers(repo: Repo) -> None:
    repo.pipeline(
        "jobs:\n  j:\n    steps:\n      - run: echo hi > out.txt\n        outputs: [out.txt]\n"
    )
    repo.commit()
    ids = []
    for _ in range(2):
        assert repo.run("run").code == 0
        ids.append(repo.show()["id"])
    named = [repo.show(ref)["id"] for ref in ("#1", "1", "#2", "2")]
    assert named == [ids[0], ids[0], ids[1], ids[1]]
    assert repo.show("#2")["number"] == 2
    listed = repo.run("runs")
    assert listed.code == 0
    rows = [line.split()[:2] for line in listed.out.splitlines()[1:]]
    assert rows == [["#2", ids[1]], ["#1", ids[0]]]
    shown = repo.run("show", "#1")
    assert shown.code == 0 and shown.out.splitlines()[0].startswith(f"run       {ids[0]}  #1  (")
    assert repo.run("logs", "#1").code == 0

    missing = repo.run("show", "#9")
    assert missing.code == 2 and "there is no run #9; `conveyor runs` lists them" in missing.err
    odd = repo.run("show", "#x")
    assert odd.code == 2 and "'#x' is not a run number" in odd.err
    assert "Traceback" not in missing.err + odd.err

    # with a server configured, an unknown number is still this clone's: never the
    # server's run of that number (another run)
    repo.write(".conveyor/config.toml", '[remote]\nurl = "http://127.0.0.1:9"\nproject = "p"\n')
    fetched = repo.run("fetch", "#9", env={"CONVEYOR_TOKEN": "t"})
    assert fetched.code == 2 and "there is no run #9" in fetched.err, fetched.err
