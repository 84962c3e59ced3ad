"""Results back through git: a run's outputs committed on top of the run's commit.

The commit is built with plumbing in the bare repository (a private index, no working
tree): the run commit's tree plus every declared output. Files up to ``INLINE_LIMIT``
go in as they are (masked when they hold a secret); larger ones as small pointer files
naming their digest. Refs are moved only once the commit exists, so a fetch never sees
half a result.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ProjectError
from conveyor.metadata.records import StepRunRecord
from conveyor.server.masking import Masker, scan_file
from conveyor.store.cas import ContentStore
from conveyor.vcs.git import ZERO, git, resolve

INLINE_LIMIT = 1024 * 1024
RESULTS_PREFIX = "refs/conveyor/results/"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Conveyor",
    "GIT_AUTHOR_EMAIL": "conveyor@localhost",
    "GIT_COMMITTER_NAME": "Conveyor",
    "GIT_COMMITTER_EMAIL": "conveyor@localhost",
}


@dataclass(frozen=True)
class ResultFile:
    path: str
    digest: str
    size: int


def result_files(store: ContentStore, steps: list[StepRunRecord]) -> list[ResultFile]:
    """Every file the run's steps declared as output (trees flattened); unsafe paths dropped."""
    files: dict[str, ResultFile] = {}
    for step in steps:
        for output in step.outputs:
            if output.kind == "tree":
                for entry in store.read_tree(output.digest):
                    path = posixpath.join(output.path, entry.path)
                    files[path] = ResultFile(path, entry.digest, entry.size)
            else:
                files[output.path] = ResultFile(output.path, output.digest, output.size)
    return [f for f in files.values() if _safe(f.path)]


def _safe(path: str) -> bool:
    norm = posixpath.normpath(path)
    return not (
        os.path.isabs(path) or norm.startswith("..") or norm == "." or "/.git" in f"/{norm}"
    )


def pointer_text(run_id: str, item: ResultFile) -> str:
    return (
        "conveyor-pointer v1\n"
        f"digest {item.digest}\n"
        f"size {item.size}\n"
        f"# too large for git: `conveyor fetch {run_id}` brings the content\n"
    )


def withheld_text(item: ResultFile) -> str:
    return (
        "conveyor-withheld v1\n"
        f"size {item.size}\n"
        "# this binary output holds a secret of the project: it is kept out of git\n"
    )


def screen(
    store: ContentStore, files: list[ResultFile], masker: Masker
) -> tuple[dict[str, bytes], list[str]]:
    """What git gets instead of files that hold a secret: text with every form masked; a
    note for a binary file (masking would corrupt it). Also the paths withheld that way."""
    replaced: dict[str, bytes] = {}
    withheld: list[str] = []
    if not masker:
        return replaced, withheld
    for item in files:
        found, text = scan_file(store.path_of(item.digest), masker)
        if not found:
            continue
        if text:
            replaced[item.path] = masker.mask(store.path_of(item.digest).read_bytes())
        else:
            replaced[item.path] = withheld_text(item).encode()
            withheld.append(item.path)
    return replaced, withheld


def commit_results(
    repo: Path,
    store: ContentStore,
    run_id: str,
    commit: str,
    files: list[ResultFile],
    message: str,
    branch: str | None,
    masker: Masker,
) -> tuple[str, list[str]]:
    """Commit ``files`` on top of ``commit``; point the run's (and branch's) result refs at
    it. No form of a secret goes in (see ``screen``). Returns the commit and the paths of
    binary files withheld because they hold a secret."""
    inline = [f for f in files if f.size <= INLINE_LIMIT]
    replaced, withheld = screen(store, inline, masker)
    with tempfile.TemporaryDirectory(prefix="conveyor-results-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **_IDENTITY}
        git(repo, "read-tree", commit, env=index)
        entries = []
        plain = [f for f in inline if f.path not in replaced]
        if plain:
            paths = "\n".join(str(store.path_of(f.digest)) for f in plain) + "\n"
            shas = git(repo, "hash-object", "-w", "--stdin-paths", stdin=paths.encode()).split()
            entries += [f"100644 {sha}\t{f.path}" for sha, f in zip(shas, plain, strict=True)]
        others = [(p, c) for p, c in replaced.items()]
        others += [(f.path, pointer_text(run_id, f).encode()) for f in files if f not in inline]
        for path, content in others:
            sha = git(repo, "hash-object", "-w", "--stdin", stdin=content).strip()
            entries.append(f"100644 {sha}\t{path}")
        if entries:
            info = ("\n".join(entries) + "\n").encode()
            git(repo, "update-index", "--index-info", stdin=info, env=index)
        tree = git(repo, "write-tree", env=index).strip()
    if not branch:
        result = git(repo, "commit-tree", tree, "-p", commit, "-m", message, env=_IDENTITY)
        git(repo, "update-ref", f"{RESULTS_PREFIX}{run_id}", result.strip())
        return result.strip(), withheld
    moving = f"{RESULTS_PREFIX}{branch}"
    for _ in range(20):  # another run of the branch may move the ref between read and write
        previous = resolve(repo, moving)
        parents = ["-p", commit] + (["-p", previous] if previous else [])
        result = git(repo, "commit-tree", tree, *parents, "-m", message, env=_IDENTITY).strip()
        try:
            git(repo, "update-ref", moving, result, previous or ZERO)
        except ProjectError:
            continue
        git(repo, "update-ref", f"{RESULTS_PREFIX}{run_id}", result)
        return result, withheld
    raise ProjectError(f"could not move {moving}: too many concurrent updates")
