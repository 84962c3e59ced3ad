"""`git_state` with real git: `git status` runs beside `git rev-parse`, and each answer
still lands where it belongs (clean, dirty, unborn HEAD, no repository, no git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.errors import ProjectError
from conveyor.vcs import git as vcs_git
from conveyor.vcs.git import git_state


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a\n", encoding="utf-8")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def _head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_a_clean_checkout(repo: Path) -> None:
    (repo / "sub").mkdir()
    state = git_state(repo / "sub")
    assert state.toplevel.resolve() == repo.resolve()
    assert (state.commit, state.dirty, state.diff_digest) == (_head(repo), False, None)


def test_a_tracked_change_is_dirty_with_its_diff_digest(repo: Path) -> None:
    (repo / "untracked.txt").write_text("u\n", encoding="utf-8")
    assert git_state(repo).dirty is False  # untracked files do not count
    (repo / "a.txt").write_text("b\n", encoding="utf-8")
    first = git_state(repo)
    assert first.dirty is True and first.diff_digest is not None
    (repo / "a.txt").write_text("c\n", encoding="utf-8")
    assert git_state(repo).diff_digest not in (None, first.diff_digest)


def test_an_unborn_head(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    state = git_state(tmp_path)
    assert (state.commit, state.dirty) == (None, True)


def test_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(ProjectError, match="not inside a git repository"):
        git_state(tmp_path)


def test_a_status_that_fails_is_an_error(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background `git status` is checked like any other git call."""
    real_start = vcs_git._start

    def broken_status(cwd: Path, *args: str) -> subprocess.Popen[bytes] | None:
        return real_start(cwd, "status", "--no-such-option")

    monkeypatch.setattr(vcs_git, "_start", broken_status)
    with pytest.raises(ProjectError, match="git status failed"):
        git_state(repo)


def test_without_git_on_the_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "nothing-here"))
    with pytest.raises(ProjectError, match="git is not installed"):
        git_state(repo)


def test_a_query_asked_early_answers_as_git_state_and_a_discarded_one_is_reaped(
    repo: Path,
) -> None:
    """A run starts `git status` before reading its plan and asks for the answer after;
    a plan that fails to load discards the query: its git ends and is reaped."""
    early = vcs_git.GitQuery(repo)
    (repo / "a.txt").write_text("changed before the answer is read\n", encoding="utf-8")
    assert early.result().commit == _head(repo)
    dropped = vcs_git.GitQuery(repo)
    started = dropped._status
    dropped.discard()
    dropped.discard()  # twice is harmless
    assert started is not None and started.returncode is not None
