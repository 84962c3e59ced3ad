"""The bare repository of a project: creation, hooks, reading files at a commit.

The hooks are small shell scripts (curl), or stdlib-only Python where curl is missing.
``pre-receive`` refuses pushes to the server-owned ``refs/conveyor/`` namespace;
``post-receive`` hands the updated refs to the server that is serving the push (its
URL and a per-process secret come through the environment of ``git http-backend``) and
prints its answer, which the git client shows as ``remote:`` lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conveyor.errors import ProjectError, UsageError

ZERO = "0" * 40

_PRE_RECEIVE_SH = """\
while read -r old new ref; do
    case "$ref" in refs/conveyor/*)
        echo "conveyor: refs/conveyor/ belongs to the server; push branches and tags"
        exit 1;;
    esac
done
"""

_POST_RECEIVE_SH = """\
[ -n "$CONVEYOR_HOOK_URL" ] || exit 0
curl -sS --fail-with-body --max-time 60 --data-binary @- \\
    -H "Content-Type: text/plain" \\
    -H "X-Conveyor-Hook: $CONVEYOR_HOOK_SECRET" \\
    -H "X-Conveyor-Project: $CONVEYOR_PROJECT" \\
    -H "X-Conveyor-User: $REMOTE_USER" \\
    "$CONVEYOR_HOOK_URL" || echo "conveyor: the push landed but no run was queued"
"""

_PRE_RECEIVE = """\
import sys
for line in sys.stdin.read().splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[2].startswith("refs/conveyor/"):
        print("conveyor: refs/conveyor/ belongs to the server; push branches and tags")
        sys.exit(1)
"""

_POST_RECEIVE = """\
import os, sys, urllib.request
url = os.environ.get("CONVEYOR_HOOK_URL")
if url:
    request = urllib.request.Request(url, data=sys.stdin.buffer.read(), method="POST")
    request.add_header("X-Conveyor-Hook", os.environ.get("CONVEYOR_HOOK_SECRET", ""))
    request.add_header("X-Conveyor-Project", os.environ.get("CONVEYOR_PROJECT", ""))
    request.add_header("X-Conveyor-User", os.environ.get("REMOTE_USER", ""))
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            sys.stdout.write(answer.read().decode())
    except Exception as exc:
        print(f"conveyor: the push landed but no run was queued: {exc}")
"""


def git(
    repo: Path,
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Run git in ``repo``; its stdout, or a ProjectError with git's last line."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=repo,
            input=stdin,
            capture_output=True,
            env={**os.environ, **env} if env else None,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ProjectError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ProjectError(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout.decode()


def init_bare(path: Path) -> None:
    """A bare repository that accepts pushes over HTTP, with Conveyor's hooks."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--bare", "--initial-branch=main", ".")
    git(path, "config", "http.receivepack", "true")
    git(path, "config", "receive.denyDeleteCurrent", "warn")
    install_hooks(path)


def install_hooks(path: Path) -> None:
    """Shell and curl when curl is there (a few milliseconds), else stdlib Python."""
    hooks = path / "hooks"
    hooks.mkdir(exist_ok=True)
    if shutil.which("curl"):
        bodies = {"pre-receive": _PRE_RECEIVE_SH, "post-receive": _POST_RECEIVE_SH}
        shebang = "#!/bin/sh"
    else:
        bodies = {"pre-receive": _PRE_RECEIVE, "post-receive": _POST_RECEIVE}
        shebang = f"#!{sys.executable} -IS"  # one argument: the kernel passes one
    for name, body in bodies.items():
        hook = hooks / name
        hook.write_text(f"{shebang}\n{body}", encoding="utf-8")
        hook.chmod(0o755)


def check_ref(ref: str) -> str:
    """``ref`` if it is a well-formed branch or tag (``git check-ref-format``, and no
    part starting with ``-``); else a UsageError."""
    parts = ref.split("/")
    if (
        len(ref) > 255
        or not ref.startswith(("refs/heads/", "refs/tags/"))
        or any(part.startswith("-") for part in parts)
        or subprocess.run(
            ["git", "check-ref-format", ref], capture_output=True, check=False
        ).returncode
    ):
        raise UsageError(f"the ref {ref[:200]!r} is not a valid branch or tag (refs/heads/NAME)")
    return ref


def check_revision(rev: str) -> str:
    """``rev`` (a branch, tag or commit from a request) if git cannot read it as an option."""
    if not rev or len(rev) > 255 or rev.startswith("-") or any(c <= " " for c in rev):
        raise UsageError(f"{rev[:200]!r} is not a branch, tag or commit name")
    return rev


def read_file(repo: Path, commit: str, path: str) -> bytes | None:
    """A file's bytes at ``commit``, or None when it is not there."""
    if commit.startswith("-"):
        return None
    proc = subprocess.run(
        ["git", "cat-file", "blob", f"{commit}:{path}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def file_size(repo: Path, commit: str, path: str) -> int | None:
    """A file's size in bytes at ``commit`` (without reading it), or None when it is not
    there."""
    if commit.startswith("-"):
        return None
    proc = subprocess.run(
        ["git", "cat-file", "-s", f"{commit}:{path}"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return int(proc.stdout) if proc.returncode == 0 else None


def resolve(repo: Path, ref: str) -> str | None:
    """The commit a ref, branch, tag or hash names, or None."""
    if ref.startswith("-"):
        return None
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def add_worktree(repo: Path, commit: str, path: Path) -> None:
    if commit.startswith("-"):
        raise UsageError(f"{commit[:200]!r} is not a commit")
    git(repo, "worktree", "add", "--detach", "--quiet", "--", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", "--", str(path)],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True, check=False)
