"""Where actions come from: a local directory, or a git repository cloned once per ref
into ``.conveyor/cache/actions/`` and pinned by its commit; and the isolated Python
environments of native python actions (``~/.cache/conveyor/action-envs``)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conveyor.errors import ProjectError
from conveyor.spec.actions import ActionRef, ActionResolver, ResolvedAction, local_resolver
from conveyor.vcs.git import clone_ref, head_commit, remote_commit

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
DEFAULT_BASE = "https://github.com"
_REMOTE = ("https://", "http://", "ssh://", "git://", "git@")
"""The URLs a server clones actions from: none of them reaches its own disk."""


def git_url(ref: ActionRef, base: str = DEFAULT_BASE, root: Path | None = None) -> str:
    """``git`` if given; else the repository of the format's own library, if it has one;
    else ``owner/name`` under ``base`` (a URL or a directory of repositories)."""
    if ref.git:
        if "://" in ref.git or ref.git.startswith("git@") or root is None:
            return ref.git
        return str((root / ref.git).resolve())
    if ref.library:
        return ref.library
    if "://" in base or base.startswith("git@"):
        return f"{base.rstrip('/')}/{ref.name}"
    directory = (root or Path(".")) / Path(base).expanduser() / ref.name
    bare = directory.with_name(directory.name + ".git")
    return str((directory if directory.exists() or not bare.exists() else bare).resolve())


def project_resolver(
    base: Path,
    search: Sequence[Path],
    cache: Path,
    action_base: str | None = None,
    server: bool = False,
) -> ActionResolver:
    """Local actions as :func:`local_resolver` finds them; git actions cloned into
    ``cache``. A clone that exists already is checked against the remote once per
    resolver (one load of the pipeline): a tag that moved is fetched again.

    For a ``server``, which reads the pipeline as its own user outside the steps'
    sandbox: local actions must be inside the project, repositories must be remote
    URLs, and no Python environment is built (pip runs packages' build code)."""
    local = local_resolver(base, search)
    checked: set[tuple[str, str]] = set()
    builder = _no_environment if server else action_environment
    project = base.resolve()

    def _with_environments(resolved: ResolvedAction) -> ResolvedAction:
        return ResolvedAction(resolved.directory, resolved.commit, resolved.warning, builder)

    def _local(ref: ActionRef) -> ResolvedAction:
        resolved = local(ref)
        if server and not resolved.directory.resolve().is_relative_to(project):
            raise ValueError(f"action {ref} is outside the project; a server runs only its own")
        return resolved

    def resolve(ref: ActionRef) -> ResolvedAction:
        if ref.local or (ref.library is None and ref.name.startswith("local/")):
            return _with_environments(_local(ref))
        if ref.library is not None and any((root / ref.name).is_dir() for root in search):
            return _with_environments(_local(ref))
        url = git_url(ref, action_base or DEFAULT_BASE, base)
        if server and not url.lower().startswith(_REMOTE):  # file:// is the server's disk
            raise ValueError(
                f"action {ref} names a repository on the server's disk; a server fetches "
                "actions from remote URLs only"
            )
        tag = ref.tag or "latest"
        digest = hashlib.blake2b(url.encode(), digest_size=6).hexdigest()
        short = _UNSAFE.sub("_", ref.name.rstrip("/").rpartition("/")[2] if ref.git else ref.name)
        directory = cache / f"{short}-{digest}@{_UNSAFE.sub('_', tag)}"
        # `latest` is the default branch, as in DataTorch's agent
        wanted = None if tag == "latest" else tag
        warning = None
        if (directory / ".git").exists() and (url, tag) not in checked:
            checked.add((url, tag))
            old = head_commit(directory)
            new = remote_commit(url, wanted)
            if new is not None and new != old:
                shutil.rmtree(directory)
                warning = (
                    f"action {ref}: {tag} of {url} moved from commit {old} to {new}; "
                    "fetched it again"
                )
        try:
            commit = clone_ref(url, wanted, directory)
        except ProjectError as exc:
            reason = str(exc).rpartition(" failed: ")[2]
            raise ValueError(f"git cannot fetch {tag} of {url} ({reason})") from None
        checked.add((url, tag))
        return _with_environments(ResolvedAction(directory, commit, warning))

    return resolve


def _no_environment(requirements: Path) -> str:
    raise ValueError(
        f"this server does not build Python environments for actions ({requirements.name}: "
        "installing packages runs their build code outside the steps' sandbox); install "
        "what the action needs in the step, or use an image"
    )


def environments_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "conveyor" / "action-envs"


def action_environment(requirements: Path) -> str:
    """The interpreter of an isolated environment with ``requirements`` installed: one
    per digest of the requirements file and this Python's version, built once (with
    ``uv`` when it is installed, else ``venv`` and pip). Paths in the file are read
    from its directory."""
    try:
        text = requirements.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read its requirements {requirements.name}: {exc}") from None
    digest = hashlib.blake2b(text + sys.version.encode(), digest_size=10).hexdigest()
    target = environments_dir() / digest
    python = target / "bin" / "python"
    if (target / ".complete").is_file():
        return str(python)
    tmp = target.with_name(f"{digest}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    if uv:
        commands = [
            [uv, "venv", "-q", "--python", sys.executable, str(tmp)],
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(tmp / "bin" / "python"),
                "-r",
                str(requirements),
            ],
        ]
    else:
        commands = [
            [sys.executable, "-m", "venv", str(tmp)],
            [
                str(tmp / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
        ]
    for command in commands:
        done = subprocess.run(
            command, cwd=requirements.parent, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise ValueError(
                f"installing {requirements.name} failed: {lines[-1] if lines else done.returncode}"
            )
    (tmp / ".complete").write_text(requirements.name, encoding="utf-8")
    try:
        tmp.rename(target)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(python)
