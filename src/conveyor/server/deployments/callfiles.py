"""The files a call sent, for an ``elastic`` run: a commit over the deployment's with
each file at ``.conveyor/inputs/DIGEST/NAME`` (NAME: the input's, never the client's
filename; DIGEST: the start of its content's SHA-256), kept reachable by a ref of its own
(``refs/conveyor/deployments/calls/SHA``). The run's parameter of that input is the
file's path in its workspace: since the path names the content, a step that reads the
file through it gets another cache key for other bytes (the file is no declared input)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from conveyor.vcs.git import run_git

FOLDER = ".conveyor/inputs"
CALLS_REF = "refs/conveyor/deployments/calls/"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Conveyor",
    "GIT_AUTHOR_EMAIL": "conveyor@localhost",
    "GIT_COMMITTER_NAME": "Conveyor",
    "GIT_COMMITTER_EMAIL": "conveyor@localhost",
}


def path_of(name: str, data: bytes) -> str:
    return f"{FOLDER}/{hashlib.sha256(data).hexdigest()[:16]}/{name}"


def call_commit(repo: Path, commit: str, files: dict[str, bytes]) -> str:
    """A commit of ``commit``'s tree plus the files (a private index: no work tree)."""
    with tempfile.TemporaryDirectory(prefix="call-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", commit, env=env)
        for name, data in files.items():
            blob = run_git(repo, "hash-object", "-w", "--stdin", stdin=data).stdout
            info = f"100644,{blob.decode().strip()},{path_of(name, data)}"
            run_git(repo, "update-index", "--add", "--cacheinfo", info, env=env)
        tree = run_git(repo, "write-tree", env=env).stdout.decode().strip()
    made = run_git(
        repo, "commit-tree", tree, "-p", commit, "-m", "Deployment call inputs", env=IDENTITY
    )
    sha = made.stdout.decode().strip()
    run_git(repo, "update-ref", CALLS_REF + sha, sha)  # the run's commit stays reachable
    return sha
