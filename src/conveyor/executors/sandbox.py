"""A bubblewrap sandbox around local steps (a server's: laptop runs are not sandboxed).

The step sees the machine read-only, with the directories that hold secrets (the
server's data directory, its user's home, what the admin adds) replaced by empty ones,
a private ``/tmp``, ``/var/tmp``, ``/run``, ``/proc`` and ``/dev``, and its own
workspace writable. It runs as ``nobody`` in a user namespace of its own (no
capabilities, no further namespaces), in its own PID namespace (it cannot see or signal
the server), with the network shared or loopback only. Outside the namespace it acts as
the server's user: files of that user outside the hidden directories stay readable.
The environment is a short list of the server's harmless variables plus what the
pipeline gives the step: never the server's whole environment.

The setting is a table (a server builds it per run): ``hide`` (directories to hide),
``readable`` (paths inside hidden ones to show read-only, e.g. the Python the server
runs), ``network`` (default on) and ``program`` (default ``bwrap`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from conveyor.errors import ExecutorError

NOBODY = "65534"
PASSED_ENV = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
"""The server's variables a sandboxed step gets (and every ``LC_*``): what finds
programs, libraries and the network; no key, database URL or token."""

PRIVATE = ("/tmp", "/var/tmp", "/run")
"""Empty and writable in every sandbox. ``/run`` holds the sockets of the machine's
daemons (docker, podman, D-Bus, PostgreSQL): a step must not talk to them."""
SHOWN = ("/run/systemd/resolve",)
"""Shown again, read-only: where ``/etc/resolv.conf`` points with systemd-resolved."""

_checked: dict[str, str | None] = {}


def _runtime() -> tuple[str, ...]:
    """This Python and Conveyor itself, shown read-only wherever they are installed: a
    step (``python -m conveyor.pystep``, ``import conveyor``) runs the interpreter on the
    ``PATH`` it inherits, and a virtualenv under ``/tmp`` is private to the sandbox
    otherwise. Code only: the server's data stays hidden around it."""
    return (sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[2]))


class Sandbox(NamedTuple):
    """How the local executor wraps a step's command in bubblewrap."""

    hide: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()
    network: bool = True
    program: str = "bwrap"

    @staticmethod
    def from_setting(value: object) -> Sandbox | None:
        """The executor's ``sandbox`` setting: a table, or None/false for none."""
        if not value:
            return None
        if not isinstance(value, Mapping):
            raise ExecutorError("the local executor's sandbox setting must be a table")
        return Sandbox(
            hide=tuple(str(p) for p in value.get("hide", ())),
            readable=tuple(str(p) for p in value.get("readable", ())),
            network=bool(value.get("network", True)),
            program=str(value.get("program") or "bwrap"),
        )

    def argv(self, workdir: Path, command: Sequence[str]) -> list[str]:
        """bwrap's command line that runs ``command`` in ``workdir`` inside the sandbox."""
        return self._argv(self.check(), workdir, command)

    def _argv(self, program: str, workdir: Path, command: Sequence[str]) -> list[str]:
        args = [program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        private = [p for p in PRIVATE if os.path.isdir(p)]
        for path in private:
            args += ["--tmpfs", path]
        # parents before children: a directory hidden inside a readable one stays hidden
        hidden = [os.path.realpath(p) for p in self.hide if _hideable(p)]
        mounts = {path: ["--tmpfs", path] for path in hidden}
        for path in map(os.path.realpath, (*self.readable, *SHOWN, *_runtime())):
            if os.path.exists(path) and _inside(path, [*private, *hidden]):
                mounts.setdefault(path, ["--ro-bind", path, path])
        for path in sorted(mounts, key=len):
            args += mounts[path]
        root = os.path.realpath(workdir)
        args += ["--bind", root, root, "--chdir", root]
        for path in hidden:  # once the mount points in them exist: nothing to write there
            args += ["--remount-ro", path]
        args += ["--unshare-all", "--unshare-user", "--uid", NOBODY, "--gid", NOBODY]
        if self.network:
            args.append("--share-net")
        # no new user namespace inside (where the step would regain capabilities);
        # the step ends with bwrap, so a cancel that ends bwrap ends every process in it
        args += ["--disable-userns", "--die-with-parent", "--", *command]
        return args

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The step's environment: the harmless part of this process's, then its own."""
        base = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("LC_")}
        base.update({"HOME": "/tmp", "TMPDIR": "/tmp", "USER": "nobody", "LOGNAME": "nobody"})
        return {**base, **env}

    def check(self) -> str:
        """The bwrap program, once proven to work here; else why not, as ExecutorError."""
        found = shutil.which(self.program)
        if found is None:
            problem: str | None = f"{self.program} is not installed"
        else:
            if found not in _checked:
                _checked[found] = _probe(found)
            problem = _checked[found]
        if problem is not None or found is None:
            raise ExecutorError(
                f"Conveyor cannot run steps in a sandbox here: {problem}; install bubblewrap "
                "(apt-get install bubblewrap, or scripts/engines/bwrap.sh install), or "
                "start the server with --sandbox none to run its steps unsandboxed"
            )
        return found


def sandbox_problem(program: str = "bwrap") -> str | None:
    """Why steps cannot be sandboxed on this machine (None: they can)."""
    try:
        Sandbox(program=program).check()
    except ExecutorError as exc:
        return str(exc)
    return None


def _probe(program: str) -> str | None:
    """Start ``true`` in the sandbox once: user namespaces may be disabled here."""
    argv = Sandbox(program=program, network=False)._argv(program, Path("/tmp"), ["true"])
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{program} does not start ({exc})"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"{program} does not work here ({reason})"
    return None


def _hideable(path: str) -> bool:
    return os.path.isdir(path) and os.path.realpath(path) != "/"


def _inside(path: str, dirs: Sequence[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)
