"""Thin wrappers over the git command line (the real client, no library)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import blake3

from conveyor.errors import ProjectError


@dataclass(frozen=True)
class GitState:
    toplevel: Path
    commit: str | None
    """None in a repository without commits yet."""
    dirty: bool
    """Tracked files differ from the commit (untracked files do not count)."""
    diff_digest: str | None
    """BLAKE3 of ``git diff HEAD`` when dirty, so two dirty runs can be told apart."""


# git's environment for fetching from a URL a pipeline names: no `ext::` helper, no
# password prompt (a run must not hang on one)
_REMOTE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.ext.allow",
    "GIT_CONFIG_VALUE_0": "never",
}


def _git(
    cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            check=check,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError:
        raise ProjectError(
            "git is not installed; Conveyor pins every run to a git commit"
        ) from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ProjectError(
            f"git {' '.join(args)} failed: {message[-1] if message else exc}"
        ) from None


def git_state(cwd: Path) -> GitState:
    top = _git(cwd, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise ProjectError(
            f"{cwd} is not inside a git repository; run `git init` (Conveyor pins runs to commits)"
        )
    toplevel = Path(top.stdout.decode().strip())
    head = _git(cwd, "rev-parse", "--verify", "-q", "HEAD", check=False)
    commit = head.stdout.decode().strip() or None if head.returncode == 0 else None
    if commit is None:
        return GitState(toplevel, None, True, None)
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status.stdout.strip())
    digest = None
    if dirty:
        diff = _git(cwd, "diff", "HEAD", "--binary")
        digest = blake3.blake3(diff.stdout).hexdigest()
    return GitState(toplevel, commit, dirty, digest)


def add_worktree(repo: Path, commit: str, path: Path) -> None:
    _git(repo, "worktree", "add", "--detach", "--quiet", "--", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(path), check=False)
    _git(repo, "worktree", "prune", check=False)


def check_remote(url: str, ref: str | None) -> None:
    """A URL and ref from a pipeline file are data: never an option, never ``ext::``."""
    for value in (url, ref or ""):
        if value.startswith("-") or any(ord(c) < 32 for c in value):
            raise ProjectError(f"{value[:200]!r} is not a git URL or ref (it reads as an option)")
    if "::" in url.partition("/")[0]:
        raise ProjectError(f"{url[:200]!r}: git transport helpers (`name::`) are not allowed")


def clone_ref(url: str, ref: str | None, destination: Path) -> str:
    """Clone ``ref`` (a tag or branch; None: the default branch) of ``url`` into
    ``destination`` once; return the commit it is at. An existing clone is reused as it
    is: one fetch per ref."""
    check_remote(url, ref)
    if not (destination / ".git").exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f"{destination.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        branch = ("--branch", ref) if ref else ()
        _git(
            destination.parent,
            "clone",
            "-q",
            "--depth",
            "1",
            "--single-branch",
            *branch,
            "--",
            url,
            str(tmp),
            env=_REMOTE_ENV,
        )
        try:
            tmp.rename(destination)
        except OSError:  # another process won the race: use its clone
            shutil.rmtree(tmp, ignore_errors=True)
    head = _git(destination, "rev-parse", "HEAD")
    return head.stdout.decode().strip()


def remote_commit(url: str, ref: str | None) -> str | None:
    """The commit ``ref`` (a tag or branch; None: the default branch) names at ``url``
    now, by ``git ls-remote``; None when the remote cannot be asked or lacks the ref."""
    try:
        check_remote(url, ref)
        listed = _git(
            Path.cwd(), "ls-remote", "--", url, ref or "HEAD", check=False, env=_REMOTE_ENV
        )
    except ProjectError:
        return None
    if listed.returncode != 0:
        return None
    found: dict[str, str] = {}
    for line in listed.stdout.decode(errors="replace").splitlines():
        commit, _, name = line.partition("\t")
        found[name.strip()] = commit.strip()
    if ref is None:
        return found.get("HEAD")
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in found:
            return found[name]
    return None


def head_commit(directory: Path) -> str:
    return _git(directory, "rev-parse", "HEAD").stdout.decode().strip()


def branch_commits(cwd: Path, branch: str) -> set[str]:
    """Every commit in ``branch``'s history (empty when there is no such branch)."""
    done = _git(cwd, "rev-list", "--end-of-options", f"refs/heads/{branch}", check=False)
    return set(done.stdout.decode().split()) if done.returncode == 0 else set()
