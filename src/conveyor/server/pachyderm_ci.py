"""The CI flow of Pachyderm pipelines on a push to the server (``pipeline ci``'s flow).

A lead names the spec files the flow covers (the project setting ``pachyderm_ci``; empty:
off), the directory of the Dockerfile and its build context (``pachyderm_ci_context``,
default the tree's root), the followed branch (``pachyderm_ci_branch``, default ``main``)
and the registry (``registry``, ``HOST[:PORT]``). A push to that branch (pushes are
role-checked: members and leads) that changes the context or a spec queues a ``ci``
trigger in the durable Pachyderm queue (``db/pachyderm_queue``); the claimer that runs
the project's jobs (``pachyderm_jobs``) runs it: the pushed commit's tree exported into
scratch (git's objects only, size- and count-limited, no link out of the tree), then
``sdk/pachyderm_ci``: build (a context built before is a cache hit), tag with the commit,
push, update the server-side pipelines in dependency order (all or nothing), run them.

The build runs podman outside the worker's bubblewrap sandbox (podman's rootless user
namespace needs what bubblewrap's sandbox takes away): its isolation is podman's own,
with no host mount, ``--network none``, and a context that holds the exported tree only.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from conveyor.errors import ConveyorError, UsageError
from conveyor.sdk.pachyderm_ci import PipelineCi, SpecFile
from conveyor.sdk.settings import is_registry
from conveyor.server.api_pipelines import pipelines_of
from conveyor.server.db.pachyderm_queue import Trigger
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate
from conveyor.vcs.git import ZERO, run_git

log = logging.getLogger("conveyor.server")
SETTING, BRANCH, CONTEXT, REGISTRY = (
    "pachyderm_ci",
    "pachyderm_ci_branch",
    "pachyderm_ci_context",
    "registry",
)
MAX_SPECS = 32
MAX_PATH = 255
MAX_TREE = 512 * 1024 * 1024  # bytes of the pushed tree a build may read
MAX_FILES = 20_000


def check_path(path: str, what: str) -> str:
    """A path inside the pushed tree: relative, no ``..``, nothing git or a shell reads
    as an option or a pattern."""
    parts = PurePosixPath(path).parts
    if (
        not path
        or len(path) > MAX_PATH
        or path.startswith(("/", "-", ":"))
        or "\\" in path
        or any(c < " " or c == "\x7f" for c in path)
        or any(p in ("..", ".git") for p in parts)
    ):
        raise UsageError(
            f"{what} {path[:100]!r} is not a path inside the repository (relative, "
            "without '..', at most 255 characters)"
        )
    return PurePosixPath(path).as_posix()


def check_settings(specs: list[str] | None, context: str | None, registry: str | None) -> None:
    """The lead's CI settings, as :func:`queue_ci` and :func:`run_ci` read them."""
    if specs is not None:
        if len(specs) > MAX_SPECS:
            raise UsageError(f"pachyderm_ci names at most {MAX_SPECS} spec files")
        for spec in specs:
            check_path(spec, "the spec file")
    if context:
        check_path(context, "the build context")
    if registry and not is_registry(registry):
        raise UsageError(f'registry {registry[:100]!r} is not HOST[:PORT] ("127.0.0.1:5000")')


def _settings(state: ServerState, project: str) -> dict[str, Any]:
    return state.db.accounts.settings(project)


def queue_ci(state: ServerState, project: str, updates: list[RefUpdate]) -> list[str]:
    """A ``ci`` trigger per update of the followed branch (a role-checked git push, or
    a verified forge webhook whose commit is here or fetched from the mirror) that
    changes the context or a spec of the flow, once per commit whatever brought it;
    lines for the pusher."""
    settings = _settings(state, project)
    specs = settings.get(SETTING) or []
    if not specs:
        return []
    branch = settings.get(BRANCH) or "main"
    context = settings.get(CONTEXT) or ""
    lines = []
    for update in updates:
        if update.new == ZERO or update.ref != f"refs/heads/{branch}":
            continue
        if not _touches(state.config.repo_dir(project), update, [context or ".", *specs]):
            lines.append(f"conveyor: pachyderm CI: {update.new[:12]} changes no image or spec")
            continue
        if state.db.pachyderm.enqueue_ci(project, update.new, branch) is None:
            lines.append(f"conveyor: pachyderm CI of {update.new[:12]} was queued before")
            continue
        state.pachyderm_wake.set()
        lines.append(
            f"conveyor: pachyderm CI of {update.new[:12]} queued: build, push, "
            f"update {', '.join(specs)}"
        )
    return lines


def _touches(repo: Path, update: RefUpdate, paths: list[str]) -> bool:
    if update.old in ("", ZERO):
        return True
    specs = [f":(literal){p}" for p in paths]
    done = run_git(
        repo, "diff", "--name-only", "-z", update.old, update.new, "--", *specs, check=False
    )
    return done.returncode != 0 or bool(done.stdout.strip(b"\0"))


def run_ci(state: ServerState, trigger: Trigger) -> dict[str, Any]:
    """The CI flow of ``trigger`` (its commit and branch); a failure is recorded in
    its CI record (the previous pipeline versions stay), never raised."""
    project, commit = trigger.project, trigger.name
    settings = _settings(state, project)
    pipelines = pipelines_of(state, project)
    registry = settings.get(REGISTRY)
    scratch = state.config.project_dir(project) / "ci-scratch" / uuid.uuid4().hex
    ci = PipelineCi(pipelines.project, pipelines, registry, executor="local")
    context_dir = scratch / "tree" / (settings.get(CONTEXT) or ".")
    ci.scrub = scrubber(context_dir, scratch / "tree", ci.root, state.config.data)
    if os.geteuid() == 0:
        log.warning("the pachyderm CI of %s builds as root: podman is not rootless", project)
    try:
        try:
            files, context = _prepare(state, project, commit, settings, scratch / "tree")
        except ConveyorError as exc:  # before any step: a record that says why
            log.warning("pachyderm CI of %s at %s refused: %s", project, commit[:12], exc)
            return ci.refused(commit, str(exc))
        try:
            record = ci.run(
                files, push=True, context=context, dockerfile=context / "Dockerfile", tag=commit
            )
        except ConveyorError as exc:  # its record and its steps' logs say why
            log.warning("pachyderm CI of %s at %s failed: %s", project, commit[:12], exc)
            return ci.records(1)[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("pachyderm CI of %s at %s: image %s", project, commit[:12], record["image"])
    return record


def scrubber(context: Path, tree: Path, ci_root: Path, data: Path) -> Callable[[str], str]:
    """What a flow's logs and errors show instead of the server's paths: its build
    context ``<context>``, the rest of the exported tree ``<tree>``, the flows' own
    records ``<ci>`` and the data directory ``<data>`` (longest first, as given and
    with links resolved)."""
    names: dict[str, str] = {}
    for path, name in (
        (data, "<data>"),
        (ci_root, "<ci>"),
        (tree, "<tree>"),
        (context, "<context>"),
    ):
        for shown in (os.path.normpath(path), os.path.realpath(path)):
            names[shown] = name
    order = sorted(names, key=len, reverse=True)

    def scrub(text: str) -> str:
        for path in order:
            text = text.replace(path, names[path])
        return text

    return scrub


def _prepare(
    state: ServerState, project: str, commit: str, settings: dict[str, Any], tree: Path
) -> tuple[list[SpecFile], Path]:
    specs = [check_path(s, "the spec file") for s in settings.get(SETTING) or []]
    context = check_path(settings.get(CONTEXT) or ".", "the build context")
    registry = settings.get(REGISTRY)
    check_settings(specs, context, registry)
    if not registry:
        raise UsageError("set the project's registry (HOST:PORT) for its CI to push to")
    export_tree(state.config.repo_dir(project), commit, tree)
    files = [SpecFile(tree / s, s) for s in specs]
    missing = [s for s, f in zip(specs, files, strict=True) if not f.path.is_file()]
    if missing:
        raise UsageError(f"{commit[:12]} has no spec file {', '.join(missing)}")
    if not (tree / context / "Dockerfile").is_file():
        raise UsageError(f"{commit[:12]} has no Dockerfile in {context}")
    return files, tree / context


def export_tree(repo: Path, commit: str, into: Path) -> None:
    """The commit's tree under ``into``: sizes and counts checked before reading it,
    then git's archive extracted with the ``data`` filter (no absolute path, no link
    out of the tree, no device, no setuid bit)."""
    listing = run_git(repo, "ls-tree", "-r", "-l", "-z", "--", commit, check=True).stdout
    total, count = 0, 0
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        count += 1
        size = entry.split(b"\t", 1)[0].split()[-1]
        total += int(size) if size.isdigit() else 0
    if count > MAX_FILES or total > MAX_TREE:
        raise UsageError(
            f"the tree of {commit[:12]} is too large to build ({count} files, {total} bytes; "
            f"at most {MAX_FILES} files, {MAX_TREE} bytes)"
        )
    data = run_git(repo, "archive", "--format=tar", commit, check=True, timeout=600).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.issym() and _escapes(member):
                raise UsageError(
                    f"{member.name} in {commit[:12]} is a link out of the tree "
                    f"({member.linkname[:200]}); a build context holds the tree only"
                )
        try:
            archive.extractall(into, filter="data")
        except tarfile.FilterError as exc:
            shown = f"the tree of {commit[:12]} cannot be a build context: {exc}"
            raise UsageError(shown) from None


def _escapes(member: tarfile.TarInfo) -> bool:
    target = PurePosixPath(member.linkname)
    if target.is_absolute():
        return True
    depth = len(PurePosixPath(member.name).parent.parts)
    for part in target.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False
