"""The one wrapper over the git command line (the real client, no library), for the
SDK and the server alike.

Every value that comes from a user, a file or a request is data: it goes after ``--``
(or ``--end-of-options``) and is refused when it starts with ``-``; git runs with
stdin closed, so it can never wait for a prompt.
"""

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import blake3

from conveyor.errors import ProjectError, UsageError

ZERO = "0" * 40
"""The object id git uses for "no commit" (a created or deleted ref)."""


class GitState(NamedTuple):
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


def run_git(
    cwd: Path | None,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """git ``args`` in ``cwd``; with ``check``, a failure is a ProjectError with git's
    last line of stderr. ``env`` is added to this process's environment."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            check=False,
            env={**os.environ, **env} if env else None,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ProjectError(f"git {args[0]} took longer than {timeout or 0:.0f} s") from None
    except OSError as exc:
        if shutil.which("git") is None:
            raise ProjectError(
                "git is not installed; Conveyor pins every run to a git commit"
            ) from None
        raise ProjectError(f"cannot run git {args[0]} in {cwd}: {exc}") from None
    if check and proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ProjectError(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return proc


def git(
    repo: Path,
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Run git in ``repo``; its stdout, or a ProjectError with git's last line."""
    return run_git(repo, *args, env=env, stdin=stdin, timeout=timeout).stdout.decode()


def output(cwd: Path, *args: str) -> str:
    """git's stdout, stripped, or "" when it fails (a question, not an order)."""
    proc = run_git(cwd, *args, check=False)
    return proc.stdout.decode(errors="replace").strip() if proc.returncode == 0 else ""


def git_state(cwd: Path) -> GitState:
    return GitQuery(cwd).result()


class GitQuery:
    """``git_state`` asked early: `git status` (the slow half: it stats every tracked
    file) starts when the query is made and works on another core while the caller
    does other work; :meth:`result` waits for it. A query not asked for its result is
    ended with :meth:`discard`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._status = _start(cwd, "status", "--porcelain", "--untracked-files=no")

    def discard(self) -> None:
        status, self._status = self._status, None
        _discard(status)

    def result(self) -> GitState:
        status, self._status = self._status, None
        return _state(self.cwd, status)


def _state(cwd: Path, status: subprocess.Popen[bytes] | None) -> GitState:
    # `git status` runs beside rev-parse (two short processes on two cores: every run
    # waits for them); its answer counts only once rev-parse has found a commit
    try:
        # one rev-parse answers both questions: the top level, then HEAD's commit (exit 1
        # and no commit line when HEAD is unborn; 128 outside a repository)
        top = run_git(cwd, "rev-parse", "--show-toplevel", "--verify", "-q", "HEAD", check=False)
    except BaseException:
        _discard(status)
        raise
    lines = top.stdout.decode().splitlines()
    commit = lines[1].strip() or None if top.returncode == 0 and len(lines) > 1 else None
    if commit is None:
        _discard(status)
        if top.returncode not in (0, 1) or not lines:
            raise ProjectError(
                f"{cwd} is not inside a git repository; run `git init` "
                "(Conveyor pins runs to commits)"
            )
        return GitState(Path(lines[0].strip()), None, True, None)
    toplevel = Path(lines[0].strip())
    dirty = bool(_finish(status, cwd, "status", "--porcelain", "--untracked-files=no").strip())
    digest = None
    if dirty:
        diff = run_git(cwd, "diff", "HEAD", "--binary")
        digest = blake3.blake3(diff.stdout).hexdigest()
    return GitState(toplevel, commit, dirty, digest)


def _start(cwd: Path, *args: str) -> subprocess.Popen[bytes] | None:
    """git ``args`` started in the background; None when it cannot start (``_finish``
    then runs it through ``run_git``, which says why)."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:
        return None


def _finish(proc: subprocess.Popen[bytes] | None, cwd: Path, *args: str) -> bytes:
    """The stdout of git ``args`` started by ``_start``; a ProjectError when it failed."""
    if proc is None:
        return run_git(cwd, *args).stdout
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ProjectError(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return out


def _discard(proc: subprocess.Popen[bytes] | None) -> None:
    """A git started by ``_start`` whose answer is not needed: ended and reaped."""
    if proc is not None:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.communicate()


@contextlib.contextmanager
def _worktrees_locked(repo: Path) -> Iterator[None]:
    """One worktree change at a time per repository, across processes: a `worktree prune`
    beside another process's `worktree add` can drop the new worktree's entry."""
    dot_git = repo / ".git"
    if dot_git.is_dir():
        lock_path = dot_git / "conveyor-worktrees.lock"
    elif dot_git.exists():  # a linked worktree or submodule: never write into the work tree
        digest = blake3.blake3(str(repo.resolve()).encode()).hexdigest()[:16]
        import tempfile

        lock_path = Path(tempfile.gettempdir()) / f"conveyor-worktrees-{digest}.lock"
    else:  # a bare repository (the server's)
        lock_path = repo / "conveyor-worktrees.lock"
    with open(lock_path, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_worktree(repo: Path, commit: str, path: Path) -> None:
    if commit.startswith("-"):
        raise UsageError(f"{commit[:200]!r} is not a commit")
    with _worktrees_locked(repo):
        run_git(repo, "worktree", "add", "--detach", "--quiet", "--", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    with _worktrees_locked(repo):
        run_git(repo, "worktree", "remove", "--force", "--", str(path), check=False)
        run_git(repo, "worktree", "prune", check=False)


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
        run_git(
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
    head = run_git(destination, "rev-parse", "HEAD")
    return head.stdout.decode().strip()


def remote_commit(url: str, ref: str | None) -> str | None:
    """The commit ``ref`` (a tag or branch; None: the default branch) names at ``url``
    now, by ``git ls-remote``; None when the remote cannot be asked or lacks the ref."""
    try:
        check_remote(url, ref)
        listed = run_git(
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
    return run_git(directory, "rev-parse", "HEAD").stdout.decode().strip()


def branch_commits(cwd: Path, branch: str) -> set[str]:
    """Every commit in ``branch``'s history (empty when there is no such branch)."""
    done = run_git(cwd, "rev-list", "--end-of-options", f"refs/heads/{branch}", check=False)
    return set(done.stdout.decode().split()) if done.returncode == 0 else set()


def check_ref(ref: str) -> str:
    """``ref`` if it is a well-formed branch or tag (``git check-ref-format``, and no
    part starting with ``-``); else a UsageError."""
    parts = ref.split("/")
    if (
        len(ref) > 255
        or not ref.startswith(("refs/heads/", "refs/tags/"))
        or any(part.startswith("-") for part in parts)
        or run_git(None, "check-ref-format", ref, check=False).returncode  # no `--` here
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
    proc = run_git(repo, "cat-file", "blob", f"{commit}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def file_size(repo: Path, commit: str, path: str) -> int | None:
    """A file's size in bytes at ``commit`` (without reading it), or None when it is not
    there."""
    if commit.startswith("-"):
        return None
    size = output(repo, "cat-file", "-s", f"{commit}:{path}")
    return int(size) if size else None


def resolve(repo: Path, ref: str) -> str | None:
    """The commit a ref, branch, tag or hash names, or None."""
    if ref.startswith("-"):
        return None
    return (
        output(repo, "rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}") or None
    )


class HeadNames(NamedTuple):
    """What HEAD goes by: its branch (None when detached), the tags on its commit, and
    ``owner/name`` of the ``origin`` remote (None without one)."""

    branch: str | None
    tags: tuple[str, ...]
    origin: str | None


def head_names(cwd: Path) -> HeadNames:
    branch = run_git(cwd, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    tags = run_git(cwd, "tag", "--points-at", "HEAD", check=False)
    url = run_git(cwd, "config", "--get", "remote.origin.url", check=False)
    return HeadNames(
        branch.stdout.decode().strip() or None if branch.returncode == 0 else None,
        tuple(sorted(tags.stdout.decode().split())) if tags.returncode == 0 else (),
        _owner_name(url.stdout.decode().strip()) if url.returncode == 0 else None,
    )


def _owner_name(url: str) -> str | None:
    """``owner/name`` of a remote URL (``https://host/owner/name.git``, ``git@host:owner/name``)."""
    path = url.rstrip("/").removesuffix(".git").replace(":", "/")
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


_HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def commit_summaries(repo: Path, commits: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The author's name and the subject line of each commit found in ``repo`` (one
    ``git cat-file --batch``; a commit that is not there, or not a full hash, is left out)."""
    wanted = sorted({c for c in commits if _HASH.fullmatch(c)})
    if not wanted:
        return {}
    proc = run_git(
        repo, "cat-file", "--batch", stdin="\n".join(wanted).encode() + b"\n", check=False
    )
    found: dict[str, tuple[str, str]] = {}
    data, at = proc.stdout, 0
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            break
        header = data[at:end].decode(errors="replace").split()
        at = end + 1
        if len(header) != 3:  # "<hash> missing"
            continue
        name, kind, size = header[0], header[1], int(header[2])
        body, at = data[at : at + size], at + size + 1
        if kind == "commit":
            found[name] = _summary(body.decode(errors="replace"))
    return found


def _summary(text: str) -> tuple[str, str]:
    head, _, message = text.partition("\n\n")
    author = ""
    for line in head.splitlines():
        if line.startswith("author "):
            author = line[len("author ") :].rsplit(" <", 1)[0]
            break
    return author, message.strip().partition("\n")[0]
