"""The bare repository of a project: creation and hooks. Git itself is run through
``conveyor.vcs.git``, which the other server modules import directly.

The hooks are small shell scripts (curl), or stdlib-only Python where curl is missing.
``pre-receive`` refuses pushes to the server-owned ``refs/conveyor/`` namespace;
``post-receive`` hands the updated refs to the server that is serving the push (its
URL and a per-process secret come through the environment of ``git http-backend``) and
prints its answer, which the git client shows as ``remote:`` lines.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from conveyor.vcs.git import git

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
