"""The command line of a Pachyderm datum: bubblewrap on the host (no image), or the
container runtime with mounts (an image).

Real specs hard-code ``/pfs`` paths, so the datum must see them there without root: an
unprivileged mount namespace whose root is an empty tmpfs holding only the machine's
system directories (the root itself read-only), the datum's materialised input files read-only at
``/pfs`` and a fresh writable ``/pfs/out``. The project, its ``.conveyor`` state, the
user's home and every other directory are simply absent. The command runs as
``nobody`` with no network, in its own PID namespace, and ends with bwrap. A local
job runs its datums in lanes (``pfs_lane``): one such sandbox per worker slot, its
datums in turn.

With an image, the runtime (podman or docker) mounts the same directory read-only at
``/pfs`` and its ``out`` writable at ``/pfs/out``, with no network; the datum's
variables are passed by name only (their values stay off the command line).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.errors import ExecutorError
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


def limited(argv: list[str], memory_limit: int | None) -> list[str]:
    """``argv`` run with its address space capped at ``memory_limit`` bytes (util-linux
    ``prlimit``, which sets the limit then executes it; bwrap and the datum inherit it)."""
    if memory_limit is None:
        return argv
    program = shutil.which("prlimit")
    if program is None:
        raise ExecutorError(
            "resource_limits.memory needs prlimit (util-linux) on this machine to enforce it"
        )
    return [program, f"--as={int(memory_limit)}", "--", *argv]


def datum_environment(env: dict[str, str]) -> dict[str, str]:
    """The datum's environment: the harmless variables a sandboxed step gets, then its own."""
    return Sandbox().environment(env)


def container_argv(
    cli: Sequence[str],
    kind: str,
    image_id: str,
    pfs: Path,
    command: Sequence[str],
    working_dir: str | None,
    env_names: Sequence[str],
    name: str,
    network: str = "none",
    memory: int | None = None,
    cpus: float | None = None,
) -> list[str]:
    """The runtime's command line running ``command`` in ``image_id`` with ``pfs`` at
    ``/pfs`` (read-only) and ``pfs/out`` at ``/pfs/out``; standard input stays open.
    ``memory`` (bytes) and ``cpus``: the container's cgroup limits (``resource_limits``:
    resident memory, no swap beyond it, as a Kubernetes limit; a CPU quota)."""
    root = os.path.realpath(pfs)
    args = [*cli, "run", "--rm", "-i", "--name", name, "--network", network]
    if memory is not None:
        args += [f"--memory={int(memory)}", f"--memory-swap={int(memory)}"]
    if cpus is not None:
        args += [f"--cpus={cpus:g}"]
    args += ["-v", f"{root}:/pfs:ro", "-v", f"{os.path.join(root, 'out')}:/pfs/out"]
    if os.getuid() != 0:  # files the datum writes belong to the caller
        args += ["--userns=keep-id"] if kind == "podman" else ["--user", f"{os.getuid()}"]
    if working_dir:
        args += ["-w", working_dir]
    for env_name in sorted(env_names):
        args += ["-e", env_name]
    return [*args, image_id, *command]


NO_BWRAP = 127
"""The exit code of a datum whose worker has no bubblewrap (the shell's "not found")."""


def datum_shell(
    command: Sequence[str],
    working_dir: str | None,
    env: Mapping[str, str],
    inputs: Sequence[str],
    stdin: bool,
    memory_limit: int | None = None,
) -> str:
    """Shell text for a batch executor's worker: the same bwrap sandbox as ``build_argv``,
    with ``pfs`` under the step's working directory (where its staged inputs are) seen
    at ``/pfs``. The worker is only known when it runs, so the system directories are
    looked at there; without bwrap the datum ends with one clear line and exit 127.
    Every value is shell-quoted: the spec's command and variables stay data.
    ``memory_limit`` (bytes) caps the datum's address space (``ulimit -v``)."""
    q = shlex.quote
    dirs = " ".join(q(f"pfs/{name}") for name in ("out", *inputs))
    lines = [
        f"mkdir -p {dirs}",
        "if ! command -v bwrap >/dev/null 2>&1; then",
        "  echo 'conveyor: this worker has no bubblewrap (bwrap), which a datum needs to see"
        " its files at /pfs; install it on the workers (apt-get install bubblewrap)' >&2",
        f"  exit {NO_BWRAP}",
        "fi",
        "set -- --tmpfs /",
        f"for p in {' '.join(SYSTEM)}; do",
        '  if [ -L "$p" ]; then set -- "$@" --symlink "$(readlink "$p")" "$p";',
        '  elif [ -d "$p" ]; then set -- "$@" --ro-bind "$p" "$p"; fi',
        "done",
    ]
    if memory_limit is not None:
        lines.append(f"ulimit -v {max(1, int(memory_limit) // 1024)}")
    setenv = " ".join(f"--setenv {q(k)} {q(v)}" for k, v in sorted(env.items()))
    body = [
        "--dev /dev --proc /proc --tmpfs /tmp --tmpfs /var/tmp",
        '--ro-bind "$PWD/pfs" /pfs --bind "$PWD/pfs/out" /pfs/out',
        f"--remount-ro / --chdir {q(working_dir or '/pfs')}",
        f"--unshare-all --unshare-user --uid {NOBODY} --gid {NOBODY}",
        '--clearenv --setenv PATH "${PATH:-/usr/bin:/bin}"',
        *([setenv] if setenv else []),
        "--disable-userns --die-with-parent --new-session",
        "-- " + " ".join(q(part) for part in command),
    ]
    run = 'exec bwrap "$@" ' + " ".join(body) + (" <stdin" if stdin else " </dev/null")
    return "\n".join([*lines, run]) + "\n"
