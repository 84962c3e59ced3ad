"""Working with a server from a clone (the issue's item 13): a refused push says why,
``RUN`` is a run id, a unique prefix of one or ``latest`` with ``--remote`` too, ``run
--remote`` says when the server lacks local commits (and never waits for an answer
without a terminal), and ``bench/bench_server.py`` needs only the ``[server]`` extra."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
repo = integration.repo  # the fixture: a git repository with a commit


def _remote(repo: Repo, server: Server) -> dict[str, str]:
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    return {"CONVEYOR_TOKEN": server.tokens["member"]}


def test_a_viewers_refused_push_says_why(repo: Repo, server: Server) -> None:
    repo.commit()
    pushed = git(repo.path, "push", server.git_url("demo", "viewer"), "main", check=False)
    assert pushed.returncode != 0
    assert "remote: viewers cannot push to project demo" in pushed.stderr, pushed.stderr
    outsider = git(repo.path, "push", server.git_url("demo", "outsider"), "main", check=False)
    assert outsider.returncode != 0
    assert "remote: you are not a member of project demo" in outsider.stderr, outsider.stderr


def test_fetch_and_logs_take_latest_and_run_id_prefixes(
    repo: Repo, server: Server, tmp_path: Path
) -> None:
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n      - run: mkdir -p out && echo v1 > out/v.txt\n"
        "        outputs: [out/v.txt]\n"
    )
    env = _remote(repo, server)
    repo.commit()
    git(repo.path, "push", "-q", server.git_url(), "main")
    ran = repo.run("run", "--remote", "--json", env=env)
    assert ran.code == 0, ran.err
    run_id = ran.json()["id"]
    for ref, target in (("latest", "by-latest"), (run_id[:6], "by-prefix")):
        fetched = repo.run("fetch", ref, "--remote", "--to", str(tmp_path / target), env=env)
        assert fetched.code == 0, (ref, fetched.err)
        assert (tmp_path / target / "out/v.txt").read_text() == "v1\n"
        assert run_id in fetched.out, fetched.out
    logs = repo.run("logs", run_id[:5], "--remote", env=env)
    assert logs.code == 0, logs.err
    unknown = repo.run("fetch", "fffffffff", "--remote", env=env)
    assert unknown.code == 2 and "no run" in unknown.err and "Traceback" not in unknown.err


def test_run_remote_says_when_the_server_lacks_local_commits(repo: Repo, server: Server) -> None:
    repo.pipeline("on:\n  push: null\njobs:\n  a:\n    steps:\n      - run: echo hi\n")
    env = _remote(repo, server)
    repo.commit()
    git(repo.path, "remote", "add", "team", server.git_url())
    never = repo.run("run", "--remote", env=env, timeout=60)  # stdin is not a terminal
    assert never.code == 2, never.err
    assert "has no branch main" in never.err and "git push team main" in never.err, never.err
    git(repo.path, "push", "-q", "team", "main")
    repo.write("new.txt", "local change\n")
    repo.commit("not pushed")
    local = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    behind = repo.run("run", "--remote", env=env, timeout=60)
    assert behind.code == 2, behind.err
    assert local[:12] in behind.err and "git push team main" in behind.err, behind.err
    assert "Traceback" not in behind.err
    with server.api() as api:
        assert api.get("/runs").json()["runs"] == [], "nothing was queued"


def test_bench_server_needs_only_the_server_extra(tmp_path: Path) -> None:
    """Import the benchmark with every package of the dev extra that is not also in the
    server extra made unimportable (as in an install with ``[server]`` alone)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def names(specs: list[str]) -> set[str]:
        return {s.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for s in specs}

    dev_only = names(extras["dev"]) - names(extras["server"])
    modules = {"import-linter": "importlinter", "types-PyYAML": "yaml-stubs"}
    blocked = sorted(modules.get(n, n.replace("-", "_")) for n in dev_only)
    assert "pytest" in blocked and "hypothesis" in blocked
    code = (
        "import sys, runpy\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"sys.argv = ['bench_server.py', '--help']\n"
        f"runpy.run_path({str(ROOT / 'bench/bench_server.py')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
