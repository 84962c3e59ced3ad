"""The bubblewrap command line of a Pachyderm datum run on the host (no image).

Real specs hard-code ``/pfs`` paths, so the datum must see them there without root: an
unprivileged mount namespace whose root is an empty tmpfs holding only the machine's
system directories (the root itself read-only), the datum's materialised input files read-only at
``/pfs`` and a fresh writable ``/pfs/out``. The project, its ``.conveyor`` state, the
user's home and every other directory are simply absent. The command runs as
``nobody`` with no network, in its own PID namespace, and ends with bwrap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from conveyor.executors.sandbox import NOBODY, Sandbox

SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
"""Shown read-only: programs, libraries and their configuration (nothing of the user's)."""


def datum_argv(pfs: Path, command: Sequence[str], working_dir: str | None) -> list[str]:
    """bwrap's command line running ``command`` with ``pfs`` (holding one directory per
    input and an empty ``out``) seen at ``/pfs``; raises ExecutorError without bwrap."""
    program = Sandbox().check()
    return build_argv(program, pfs, command, working_dir)


def build_argv(
    program: str, pfs: Path, command: Sequence[str], working_dir: str | None
) -> list[str]:
    args = [program, "--tmpfs", "/"]
    for path in SYSTEM:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin stays a link
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    root = os.path.realpath(pfs)
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    args += ["--ro-bind", root, "/pfs", "--bind", os.path.join(root, "out"), "/pfs/out"]
    args += ["--remount-ro", "/", "--chdir", working_dir or "/pfs"]
    args += ["--unshare-all", "--unshare-user", "--uid", NOBODY, "--gid", NOBODY]
    args += ["--disable-userns", "--die-with-parent", "--new-session", "--", *command]
    return args


def datum_environment(env: dict[str, str]) -> dict[str, str]:
    """The datum's environment: the harmless variables a sandboxed step gets, then its own."""
    return Sandbox().environment(env)
