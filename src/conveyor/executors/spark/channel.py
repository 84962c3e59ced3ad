"""The driver's end of the tasks' connections: a TCP listener beside the SparkContext.

Each Spark task connects back once (executors reach the driver anyway) and, for each
invocation of its pack in turn, proves it holds the executor's token and claims it. The
driver sends the command, environment and input files, appends the log chunks to
``log_path`` as they come, writes the returned outputs into the project directory (only
under declared outputs), records the completion when the exit message comes. A
connection that breaks before the exit message means the task was killed: the step it
was running is reported lost.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from conveyor.executors.base import Invocation
from conveyor.executors.spark.book import Book
from conveyor.executors.spark.wire import (
    DriverGone,
    Header,
    recv,
    recv_exact,
    recv_file,
    safe_relative,
    send,
)

_HELLO_TIMEOUT = 30.0
_LOST = (
    "the Spark task running the step ended before the step did "
    "(its executor or Python worker was killed or lost)"
)


class ProtocolError(Exception):
    """A task sent something the driver does not accept."""


class _Link:
    """A task's connection and the invocation it runs now: a ``cancel`` goes out only
    while that invocation runs (the next one on the connection is not cancelled)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.sid: str | None = None

    def stop(self, sid: str) -> None:
        with self.lock, contextlib.suppress(OSError):
            if self.sid == sid:
                send(self.conn, {"t": "cancel", "sid": sid})


class Channel:
    def __init__(self, book: Book, token: str, grace: float, scratch: str | None) -> None:
        self.book = book
        self.token = token
        self.grace = grace
        self.scratch = scratch
        self._listener: socket.socket | None = None

    def open(self, bind: str, port: int = 0) -> int:
        """Listen on ``bind`` (an address of the driver's host) at ``port`` (0: any free
        one); returns the port."""
        listener = socket.create_server((bind, port), backlog=128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        bound: int = listener.getsockname()[1]
        return bound

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop
            listener.close()

    # -- connections -----------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """One task's connection: its invocations one after the other, each claimed by a
        hello, until the task closes it."""
        link = _Link(conn)
        with conn:
            try:
                conn.settimeout(_HELLO_TIMEOUT)
                hello = recv(conn)
                conn.settimeout(None)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while self._serve_one(link, hello):
                    hello = recv(conn)  # the task's next invocation, or DriverGone: done
            except (DriverGone, ConnectionError, TimeoutError):
                if link.sid is not None:
                    self.book.finish(link.sid, "lost", None, _LOST)
            except Exception as exc:  # files, paths, a malformed message: never a hang
                if link.sid is not None:
                    message = f"the step's files could not be exchanged with its Spark task: {exc}"
                    self.book.finish(link.sid, "error", None, message)

    def _serve_one(self, link: _Link, hello: Header) -> bool:
        """Claim and run what ``hello`` names; False when the connection must end."""
        if not hmac.compare_digest(str(hello.get("token", "")), self.token):
            return False
        sid = str(hello.get("sid"))
        invocation = self.book.claim(
            sid, functools.partial(link.stop, sid), describe(hello.get("where"))
        )
        if invocation is None:
            with link.lock:
                send(link.conn, {"t": "skip"})
            return True
        with link.lock:
            link.sid = sid
            self._send_order(link.conn, invocation)
        self._receive(link.conn, sid, invocation)
        with link.lock:
            link.sid = None
        return True

    def _send_order(self, conn: socket.socket, invocation: Invocation) -> None:
        files = list(_input_files(invocation))
        sizes = [(rel, full, os.stat(full)) for rel, full in files]
        send(
            conn,
            {
                "t": "run",
                "command": invocation.command,
                "env": dict(invocation.env),
                "outputs": [os.path.normpath(o) for o in invocation.outputs],
                "grace": self.grace,
                "scratch": self.scratch,
                "isolate": invocation.options.get("spark.isolate") == "true",
                "files": [
                    {"path": rel, "size": st.st_size, "mode": st.st_mode & 0o777}
                    for rel, _, st in sizes
                ],
            },
        )
        for rel, full, st in sizes:
            with open(full, "rb") as source:
                if st.st_size and conn.sendfile(source, 0, st.st_size) != st.st_size:
                    raise ProtocolError(f"input {rel} changed while it was sent")

    def _receive(self, conn: socket.socket, sid: str, invocation: Invocation) -> None:
        targets = _Targets(invocation)
        invocation.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(invocation.log_path, "ab") as log:
            while True:
                header = recv(conn)
                kind = header.get("t")
                if kind == "log":
                    log.write(recv_exact(conn, int(header["size"])))
                    log.flush()
                elif kind == "dir":
                    os.makedirs(targets.resolve(header["path"]), exist_ok=True)
                elif kind == "file":
                    _receive_file(conn, targets.resolve(header["path"]), header, sid)
                elif kind in ("exit", "error"):
                    log.flush()
                    self._finish(sid, header)
                    return
                else:
                    raise ProtocolError(f"unexpected message {kind!r}")

    def _finish(self, sid: str, header: Header) -> None:
        if header["t"] == "exit":
            note = header.get("note")
            self.book.finish(sid, "exited", int(header["code"]), str(note) if note else None)
        else:
            message = f"the Spark task could not run the step: {header.get('message')}"
            self.book.finish(sid, "error", None, message)


_NAME_LIMIT = 200


def describe(where: object) -> dict[str, str] | None:
    """``{task, stage, partition, attempt, executor, host}`` (those it told), from what a
    task says of itself (its hello; the token proved it is ours, the values are still
    checked: numbers, and names of bounded length)."""
    if not isinstance(where, dict):
        return None
    ids = ("task", "stage", "partition", "attempt")
    told = {key: str(value) for key in ids if _count(value := where.get(key))}
    for key in ("executor", "host"):
        if name := _name(where.get(key)):
            told[key] = name
    return told or None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _name(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > _NAME_LIMIT:
        return None
    return value if value.isprintable() else None


class _Targets:
    """Where returned outputs may be written: under a declared output, in the project."""

    def __init__(self, invocation: Invocation) -> None:
        self.root = Path(invocation.workdir)
        self.real_root = os.path.realpath(self.root)
        self.outputs = [os.path.normpath(o) for o in invocation.outputs if safe_relative(o)]

    def resolve(self, rel: object) -> str:
        path = os.path.normpath(str(rel))
        if not safe_relative(path) or not any(
            path == o or path.startswith(o + "/") for o in self.outputs
        ):
            raise ProtocolError(f"the task returned {path!r}, which is not a declared output")
        full = os.path.join(self.root, path)
        parent = os.path.realpath(os.path.dirname(full))
        if parent != self.real_root and not parent.startswith(self.real_root + os.sep):
            raise ProtocolError(f"output {path!r} leads outside the project directory")
        return full


def _receive_file(conn: socket.socket, target: str, header: Header, sid: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    part = f"{target}.conveyor-part-{sid}"
    try:
        recv_file(conn, part, int(header["size"]), int(header["mode"]))
        os.replace(part, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


def _input_files(invocation: Invocation) -> Iterator[tuple[str, str]]:
    """(project-relative path, absolute path) of every file the declared inputs name.

    Absolute inputs are left out: the step reads them where they are."""
    root = str(invocation.workdir)
    for rel in invocation.inputs:
        full = os.path.join(root, rel)
        if not safe_relative(os.path.normpath(rel)):
            continue
        if os.path.isdir(full):
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if os.path.isfile(path):
                        yield os.path.relpath(path, root), path
        elif os.path.isfile(full):
            yield os.path.normpath(rel), full
