"""Loading a Python pipeline runs its code: where steps run sandboxed (a server's local
executor table), the loader runs in the same sandbox. A ``pipeline.py`` that reads a
hidden directory or writes outside the project while it is loaded fails with file:line
(exit 2), the secret appears nowhere, and nothing is written outside; the same file
without a sandbox proves the attempts are real. What the file prints cannot forge the
loader's answer (its stdout is the user's stderr)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

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
