"""Where DataTorch actions come from: a local directory, or a git repository cloned
once per ref into ``.conveyor/cache/actions/`` and pinned by its commit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from conveyor.errors import ProjectError
from conveyor.spec.datatorch import ActionRef, ActionResolver, ResolvedAction, local_resolver
from conveyor.vcs.git import clone_ref

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def git_url(ref: ActionRef) -> str:
    """``git:`` if given; else GitHub (``datatorch/x`` is ``datatorch-actions/x``, as in
    DataTorch's own agent)."""
    if ref.git:
        return ref.git
    name = ref.name
    if name.lower().startswith("datatorch/"):
        name = "datatorch-actions/" + name.split("/", 1)[1]
    return f"https://github.com/{name}.git"


def project_resolver(base: Path, search: Sequence[Path], cache: Path) -> ActionResolver:
    local = local_resolver(base, search)

    def resolve(ref: ActionRef) -> ResolvedAction:
        if ref.local or any((root / ref.name).is_dir() for root in search):
            return local(ref)
        url = git_url(ref)
        tag = ref.tag or "latest"
        digest = hashlib.blake2b(url.encode(), digest_size=6).hexdigest()
        directory = cache / f"{_UNSAFE.sub('_', ref.name)}-{digest}@{_UNSAFE.sub('_', tag)}"
        # `latest` is the default branch, as in DataTorch's agent
        try:
            commit = clone_ref(url, None if tag == "latest" else tag, directory)
        except ProjectError as exc:
            reason = str(exc).rpartition(" failed: ")[2]
            raise ValueError(f"git cannot fetch {tag} of {url} ({reason})") from None
        return ResolvedAction(directory, commit)

    return resolve
