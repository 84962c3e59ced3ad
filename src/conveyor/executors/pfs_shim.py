"""The sandbox side of a datum lane (``pfs_lane``): stdlib only, never imported by
Conveyor; its text is passed as data to the system's ``python3 -I -S -c`` inside a
long-lived bubblewrap sandbox.

Requests arrive one JSON line at a time on the descriptor named by the first argument
(``cmd``, ``stdin``, ``env``, ``cwd``, ``memory``); frames leave on the second's. Neither
is bubblewrap's standard input or output: its init (PID 1, which a datum may inspect)
keeps only those and closes every other descriptor. Each datum runs as a new session;
its output (stdout and stderr together) goes back as frames ``b"D" + length + bytes``,
then ``b"X" + exit code + clean flag``. When the datum's main process ends, every other
process of the sandbox's PID namespace (what the datum left running, whatever its
session) is killed, and ``/tmp``, ``/var/tmp``, ``/dev/shm`` and System V IPC objects
are emptied, so the next datum starts from what the first one saw. The shim makes
itself undumpable: a datum, running as the same user, cannot read its memory or
descriptors through ``/proc``.
"""

import ctypes
import json
import os
import resource
import selectors
import signal
import stat
import struct
import subprocess
import sys
import time
from typing import Any

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
IPC_RMID = 0
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
CHUNK = 65536


FRAMES = int(sys.argv[2]) if len(sys.argv) > 2 else 1


def send(kind: bytes, payload: bytes) -> None:
    data = kind + payload
    while data:
        data = data[os.write(FRAMES, data) :]


def main() -> None:
    # it empties /tmp after each datum: only where that /tmp is the sandbox's own (its
    # tmpfs, owned by the sandbox's unprivileged user) and it is bwrap's command (PID 2)
    if os.getuid() == 0 or os.getpid() != 2 or os.stat("/tmp").st_uid != os.getuid():
        sys.exit("conveyor: the lane shim runs only inside its bubblewrap sandbox")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for fd in (int(sys.argv[1]), FRAMES):  # no datum inherits the channel
        os.set_inheritable(fd, False)
    control = os.fdopen(int(sys.argv[1]), "rb")
    while True:
        line = control.readline()
        if not line:
            return
        code = run(json.loads(line))
        kill_all()
        clean = clear(libc)
        send(b"X", struct.pack(">iB", code, 1 if clean else 0))
        if not clean:
            return


def run(request: dict[str, Any]) -> int:
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    try:
        pid = spawn(request, read_in, write_out)
    except OSError as exc:
        text = f"conveyor: cannot run {request['cmd'][0]}: {exc.strerror}\n".encode()
        send(b"D", struct.pack(">I", len(text)) + text)
        for fd in (read_in, write_in, read_out, write_out):
            os.close(fd)
        return 127
    os.close(read_in)
    os.close(write_out)
    code = pump(pid, write_in, read_out, request["stdin"].encode())
    return 128 - code if code < 0 else code


def spawn(request: dict[str, Any], stdin: int, out: int) -> int:
    """The datum's main process, in a new session, its output (stdout and stderr) on
    ``out``; its pid. posix_spawn does the least work per datum; a memory limit must be
    set in the child before it runs the command, which takes subprocess's hook."""
    cmd, env, cwd = request["cmd"], request["env"], request["cwd"]
    memory = int(request.get("memory") or 0)
    if memory:

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

        proc = subprocess.Popen(
            cmd,
            stdin=stdin,
            stdout=out,
            stderr=out,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=limit,  # noqa: PLW1509 (the shim has one thread)
        )
        proc.returncode = 0  # reaped through its pid by pump, never through this object
        return proc.pid
    program = find(cmd[0], env)
    os.chdir(cwd)
    actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, out, 2))
    # the shim's ignored SIGPIPE (Python's default) would be inherited: restored as
    # subprocess restores it, so a datum's `yes | head` ends as it does elsewhere
    default = (signal.SIGPIPE, signal.SIGXFSZ)
    return os.posix_spawn(program, cmd, env, file_actions=actions, setsid=True, setsigdef=default)


def find(program: str, env: dict[str, str]) -> str:
    """The file ``program`` names, looked up in the datum's PATH as execvp would (the
    shim's own PATH is not the datum's); OSError when there is none to run."""
    if "/" in program:
        return program
    denied = None
    for folder in os.get_exec_path(env):
        path = os.path.join(folder, program)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = denied or path
    if denied is not None:
        raise PermissionError(13, os.strerror(13), denied)
    raise FileNotFoundError(2, os.strerror(2), program)


def pump(pid: int, pin: int, out: int, data: bytes) -> int:
    """The datum's input written and its output passed on until its main process ends;
    then the rest of the output (every writer is killed first: a background process
    holding the pipe cannot keep the datum going). Its exit code, as subprocess gives
    it (a signal's number, negative)."""
    sel = selectors.DefaultSelector()
    sel.register(out, selectors.EVENT_READ)
    if data:
        os.set_blocking(pin, False)
        sel.register(pin, selectors.EVENT_WRITE)
    else:
        os.close(pin)
        pin = -1
    try:
        pidfd = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except OSError:  # a kernel before 5.3: the main process is polled instead
        pidfd = -1
    status: int | None = None
    ended = False
    while not ended:
        for key, _ in sel.select(None if pidfd >= 0 else 0.02):
            if key.fd == pidfd:
                ended = True
            elif key.fd == out:
                chunk = os.read(out, CHUNK)
                if chunk:
                    send(b"D", struct.pack(">I", len(chunk)) + chunk)
                else:
                    sel.unregister(out)
            elif key.fd == pin:
                try:
                    data = data[os.write(pin, data[:CHUNK]) :]
                except BrokenPipeError:
                    data = b""
                if not data:
                    sel.unregister(pin)
                    os.close(pin)
                    pin = -1
        if pidfd < 0 and not ended:
            done, status = os.waitpid(pid, os.WNOHANG)
            ended = done == pid
    sel.close()
    if not ended or pidfd >= 0:
        status = os.waitpid(pid, 0)[1]
    kill_all()
    drain(out)
    for fd in (pin, out, pidfd):
        if fd >= 0:
            os.close(fd)
    assert status is not None
    return os.waitstatus_to_exitcode(status)


def drain(out: int) -> None:
    while True:
        chunk = os.read(out, CHUNK)
        if not chunk:
            return
        send(b"D", struct.pack(">I", len(chunk)) + chunk)


def kill_all() -> None:
    """Every process of the namespace but the shim and bubblewrap's init, killed and reaped."""
    for _ in range(10000):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.001)


def clear(libc: ctypes.CDLL) -> bool:
    """The scratch directories emptied and System V IPC objects removed; False when
    something could not be (the lane then starts a fresh sandbox)."""
    try:
        for top in SCRATCH:
            if os.path.isdir(top):
                for name in os.listdir(top):
                    remove(os.path.join(top, name))
        for kind, call in (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl")):
            with open("/proc/sysvipc/" + kind) as handle:
                ids = [int(line.split()[1]) for line in handle.readlines()[1:] if line.strip()]
            for ident in ids:
                if kind == "sem":
                    result = libc.semctl(ident, 0, IPC_RMID)
                else:
                    result = getattr(libc, call)(ident, IPC_RMID, None)
                if result != 0:
                    return False
    except (OSError, RecursionError):  # e.g. a tree deeper than the stack: a new sandbox
        return False
    return True


def remove(path: str) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        os.chmod(path, 0o700)
        for name in os.listdir(path):
            remove(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.unlink(path)


if __name__ == "__main__":
    main()
