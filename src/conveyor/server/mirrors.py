"""Where a project's webhooks may fetch commits from: the ``mirror`` setting.

git resolves a mirror from inside the project's own repository and reads a value that
starts with ``-`` as an option, so a mirror is checked as data before it goes near git:
a URL of a scheme a project lead may use (https, ssh, git, or scp-like ``user@host:path``),
or an absolute local path that, once symlinks are resolved, lies under a directory the
server admin allowed (``conveyor server --mirror-root DIR``) and outside the server's data
directory. The check runs when the lead sets the mirror and again before each fetch (a
symlink may have moved since), and the fetch itself allows only those protocols.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from conveyor.errors import UsageError
from conveyor.vcs.git import check_ref, git

SCHEMES = ("https", "ssh", "git")
MAX_LENGTH = 2048
FETCH_TIMEOUT = 300.0
"""Seconds a webhook's fetch may take (a mirror that stalls must not hold a thread)."""
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$|^\[?[0-9A-Fa-f:.]+\]?$")
_SCP = re.compile(r"^(?:([^@/:]+)@)?([^/:]+):(.*)$")


def check_mirror(mirror: str, data: Path, roots: Sequence[Path]) -> str:
    """What git may fetch from for ``mirror``: the URL, or the local path with symlinks
    resolved. Raises UsageError (one sentence) for anything else."""
    shown = repr(mirror[:200])
    if not mirror or len(mirror) > MAX_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in mirror):
        raise UsageError(f"the mirror {shown} is empty, too long or has control characters")
    if mirror.startswith("-"):
        raise UsageError(f"the mirror {shown} starts with '-' (git would read it as an option)")
    if _TRANSPORT.match(mirror):
        raise UsageError(
            f"the mirror {shown} uses a git transport helper (`name::`); "
            f"use a URL ({', '.join(s + '://' for s in SCHEMES)}) or an absolute path"
        )
    scheme = _SCHEME.match(mirror)
    if scheme:
        name = scheme.group(1).lower()
        if name == "file":
            return _local(mirror[len("file://") :], shown, data, roots)
        if name not in SCHEMES:
            raise UsageError(
                f"the mirror {shown} uses the scheme {name!r}; "
                f"a mirror URL is {', '.join(s + '://' for s in SCHEMES)}"
            )
        try:
            parts = urlsplit(mirror)
            host, user = parts.hostname or "", parts.username or ""
        except ValueError:
            host, user = "", ""
        _check_host(host, user, shown)
        return mirror
    scp = _SCP.match(mirror)
    if scp and not mirror.startswith("/"):
        _check_host(scp.group(2), scp.group(1) or "", shown)
        return mirror
    return _local(mirror, shown, data, roots)


def _check_host(host: str, user: str, shown: str) -> None:
    if not _HOST.fullmatch(host) or user.startswith("-"):
        raise UsageError(f"the mirror {shown} does not name a valid host")


def _local(path: str, shown: str, data: Path, roots: Sequence[Path]) -> str:
    if not path.startswith("/"):
        raise UsageError(
            f"the mirror {shown} is a relative path (git would resolve it inside the "
            "project's repository); use a URL or an absolute path"
        )
    if "%" in path:
        raise UsageError(f"the mirror {shown} has '%' escapes; give the plain path")
    if not roots:
        raise UsageError(
            f"the mirror {shown} is a local path, and this server allows none "
            "(the admin allows directories with `conveyor server --mirror-root DIR`)"
        )
    real = Path(os.path.realpath(path))
    if real.is_relative_to(os.path.realpath(data)):
        raise UsageError(f"the mirror {shown} is inside the server's data directory")
    if not any(real.is_relative_to(os.path.realpath(root)) for root in roots):
        raise UsageError(
            f"the mirror {shown} is not under a directory the server admin allows for mirrors"
        )
    return str(real)


def fetch_env(local: bool) -> dict[str, str]:
    """git's environment for a fetch the server makes: only the mirror protocols (the
    ``file`` one only for a checked local path), never ``ext``, never a prompt."""
    allowed = [*SCHEMES, "file"] if local else list(SCHEMES)
    return {
        "GIT_ALLOW_PROTOCOL": ":".join(allowed),
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.ext.allow",
        "GIT_CONFIG_VALUE_0": "never",
    }


def fetch_mirror(repo: Path, mirror: str, ref: str, data: Path, roots: Sequence[Path]) -> None:
    """Fetch branch or tag ``ref`` of ``mirror`` into ``repo`` (both checked first)."""
    source = check_mirror(mirror, data, roots)
    check_ref(ref)
    env = fetch_env(local=source.startswith("/"))
    refspec = f"+{ref}:{ref}"
    git(
        repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "--",
        source,
        refspec,
        stdin=b"",
        env=env,
        timeout=FETCH_TIMEOUT,
    )
