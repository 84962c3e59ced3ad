"""Loading a Python pipeline runs its code: where steps run sandboxed (a server's local
executor table), the loader runs in the same sandbox. A ``pipeline.py`` that reads a
hidden directory or writes outside the project while it is loaded fails with file:line
(exit 2), the secret appears nowhere, and nothing is written outside; the same file
without a sandbox proves the attempts are real. What the file prints goes to stderr, and
an answer it forges on the loader's stdout is checked like any pipeline file (no file
outside the project is digested for the plan cache). A server traces a pushed
``pipeline.py`` only in its worker's sandbox: the pipeline runs, and one that reads the
server's key while it is loaded fails without the key anywhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, need_bwrap, run_ids

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-server-key"

PIPELINE = """\
from pathlib import Path

import conveyor

LEAK = Path({secret!r}).read_text()
Path({outside!r}).write_text("pwned")
print('{{"data": {{"jobs": {{}}}}, "marks": [], "read_files": []}}')


@conveyor.step
def leak(text: str) -> str:
    return text


@conveyor.pipeline
def p() -> None:
    leak(LEAK)
"""


def _setup(repo: Repo, tmp_path: Path, sandboxed: bool) -> tuple[Path, Path]:
    hidden = tmp_path / "server-data"
    hidden.mkdir()
    (hidden / "server.key").write_text(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "pwned"
    repo.write(
        "pipeline.py", PIPELINE.format(secret=str(hidden / "server.key"), outside=str(target))
    )
    if sandboxed:
        repo.write(
            ".conveyor/config.toml",
            f'[executors.local.sandbox]\nhide = ["{hidden}"]\nnetwork = false\n',
        )
    repo.commit()
    return hidden, target


def test_the_loader_runs_in_the_steps_sandbox(repo: Repo, tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is required (scripts/engines/bwrap.sh install)")
    _, target = _setup(repo, tmp_path, sandboxed=True)
    result = repo.run("plan", "pipeline.py", "--json")
    assert result.code == 2, result.out + result.err
    assert "pipeline.py:5: FileNotFoundError" in result.err
    assert SECRET not in result.out + result.err
    assert "Traceback" not in result.err
    assert not target.exists()


def test_without_a_sandbox_the_same_file_reads_and_writes(repo: Repo, tmp_path: Path) -> None:
    _, target = _setup(repo, tmp_path, sandboxed=False)
    result = repo.run("plan", "pipeline.py", "--json")
    assert result.code == 0, result.out + result.err
    assert target.read_text() == "pwned"
    # what the file printed went to stderr, not into the plan
    assert '"jobs": {}' in result.err
    assert '"p.leak"' in result.out


GOOD = """\
import conveyor


@conveyor.step
def square(n: int) -> int:
    return n * n


@conveyor.step
def show(value: int) -> str:
    print("value", value)
    return str(value)


@conveyor.pipeline
def served(n: int = 3) -> None:
    show(square(n))
"""

STEAL = """\
from pathlib import Path

import conveyor

KEY = Path({key!r}).read_bytes().hex()


@conveyor.step
def leak(text: str) -> str:
    return text


@conveyor.pipeline
def p() -> None:
    leak(KEY)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    need_bwrap()
    srv = make_server(tmp_path, None)
    srv.start()
    yield srv
    srv.stop()


def _push(repo: Repo, server: Server, text: str) -> str:
    repo.write("pipeline.py", text)
    repo.write(".gitignore", "_pyflow/\n")
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    ids = run_ids(out)
    assert len(ids) == 1, out
    return ids[0]


def test_a_server_runs_a_pushed_python_pipeline_traced_in_the_sandbox(
    repo: Repo, server: Server, tmp_path: Path
) -> None:
    run_id = _push(repo, server, GOOD)
    run = server.wait_run(run_id, timeout=120)
    assert run["status"] == "succeeded", run
    assert sorted(s["id"] for s in run["steps"]) == ["served.show", "served.square"]
    with server.api("viewer") as viewer:
        assert viewer.get(f"/runs/{run_id}/logs/served.show").text == "value 9\n"

    stolen = _push(repo, server, STEAL.format(key=str(server.data / "server.key")))
    run = server.wait_run(stolen, timeout=120)
    assert run["status"] == "failed", run
    key = (server.data / "server.key").read_bytes().hex()
    with server.api("member") as member:
        shown = member.get(f"/runs/{stolen}").text
    assert "pipeline.py:5" in shown and "Error" in shown
    assert key not in shown
    stored = server.data / "projects" / "demo"
    assert all(key not in p.read_text(errors="replace") for p in stored.rglob("*.log"))


FORGED = """\
import json
import os

os.write(1, json.dumps({
    "data": {"jobs": {"j": {"steps": [{"run": "true"}]}}},
    "marks": [[["jobs"], "x", 1]],
    "read_files": ["/etc/passwd", "../outside.txt"],
}).encode())
os._exit(0)
"""


def test_a_forged_loader_answer_is_checked_like_any_pipeline_file(repo: Repo) -> None:
    repo.write("pipeline.py", FORGED)
    repo.commit()
    result = repo.run("plan", "pipeline.py")
    assert result.code == 2, result.out + result.err
    assert "pipeline.py: the pipeline file's loader gave an unusable answer" in result.err
    repo.write("pipeline.py", FORGED.replace('"x"', "3"))
    repo.commit()
    result = repo.run("plan", "pipeline.py", "--json")
    assert result.code == 0, result.out + result.err  # its data is a valid pipeline
    from conveyor.sdk.pyflow import load_python_spec

    root = repo.path.resolve()
    spec = load_python_spec(root, root / "pipeline.py", "pipeline.py")
    assert spec.read_files == ()  # nothing outside the project is digested
