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
    memory = int(request.get("memory") or 0)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    try:
        proc = subprocess.Popen(
            request["cmd"],
            stdin=read_in,
            stdout=write_out,
            stderr=write_out,
            cwd=request["cwd"],
            env=request["env"],
            start_new_session=True,
            preexec_fn=limit if memory else None,  # noqa: PLW1509 (the shim has one thread)
        )
    except OSError as exc:
        text = f"conveyor: cannot run {request['cmd'][0]}: {exc.strerror}\n".encode()
        send(b"D", struct.pack(">I", len(text)) + text)
        for fd in (read_in, write_in, read_out, write_out):
            os.close(fd)
        return 127
    os.close(read_in)
    os.close(write_out)
    pump(proc, write_in, read_out, request["stdin"].encode())
    code = proc.returncode
    return 128 - code if code < 0 else code


def pump(proc: subprocess.Popen[bytes], pin: int, out: int, data: bytes) -> None:
    """The datum's input written and its output passed on until its main process ends;
    then the rest of the output (every writer is killed first: a background process
    holding the pipe cannot keep the datum going)."""
    sel = selectors.DefaultSelector()
    sel.register(out, selectors.EVENT_READ)
    if data:
        os.set_blocking(pin, False)
        sel.register(pin, selectors.EVENT_WRITE)
    else:
        os.close(pin)
        pin = -1
    try:
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except OSError:  # a kernel before 5.3: the main process is polled instead
        pidfd = -1
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
        ended = ended or (pidfd < 0 and proc.poll() is not None)
    sel.close()
    proc.wait()
    kill_all()
    drain(out)
    for fd in (pin, out, pidfd):
        if fd >= 0:
            os.close(fd)


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
    except OSError:
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
