"""Several processes serving HTTP on one port (``conveyor server --http-processes N``).

The parent has opened the database (migrations ran there); it binds the socket and
forks. Each child opens its own connections and serves the shared socket with uvicorn.
What the processes must agree on is made before the fork: the post-receive hook's
secret (a push served by one process calls the hook on any of them) and the wake-up
event of the in-process workers (an interprocess event: a run queued by any process
starts at once). Only the first child runs the in-process workers; every child runs
the heartbeat watcher and the schedule clock, which are safe with several servers.
Tokens, roles and runs are read from the database on every request, so a revoked
token is refused by every process at once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import cast

from conveyor.server.db.recent import keep_nothing
from conveyor.server.state import ServerState

log = logging.getLogger("conveyor.server")
BACKLOG = 2048  # uvicorn's default


def serve_processes(state: ServerState, processes: int, reopen: Callable[[], ServerState]) -> None:
    """Serve ``state``'s port from ``processes`` forked processes until a signal (or one
    of them ends: then the others are stopped and this exits 1)."""
    keep_nothing()  # a write in one process is not seen by the others' answers
    config = state.config
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.create_server((config.host, config.port), family=family, backlog=BACKLOG)
    # threading.Event's interface, shared across the fork
    wake = cast(threading.Event, multiprocessing.get_context("fork").Event())
    secret = state.hook_secret
    state.db.close()  # no connection crosses the fork
    pids: list[int] = []
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signals = {signal.SIGTERM, signal.SIGINT}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # held until each side is ready
    for index in range(processes):
        pid = os.fork()
        if pid == 0:
            _child(reopen, sock, wake, secret, config.workers if index == 0 else 0)
        pids.append(pid)
    sock.close()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    failed = False
    for _ in range(processes):
        _pid, status = os.wait()
        if not stopping:  # one ended by itself: stop the others, and say so
            log.error("an HTTP process ended (%s): stopping", os.waitstatus_to_exitcode(status))
            failed = True
            stop(signal.SIGTERM, None)
    if failed:
        raise SystemExit(1)


def _child(
    reopen: Callable[[], ServerState],
    sock: socket.socket,
    wake: threading.Event,
    secret: str,
    workers: int,
) -> None:
    """One serving process; never returns (its exit skips the parent's clean-up)."""
    import uvicorn

    from conveyor.server.app import create_app

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's; uvicorn installs its own
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    code = 1
    try:
        state = reopen()
        state.wake = wake
        state.hook_secret = secret
        app = create_app(state, workers)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[sock])
        code = 0
    except BaseException:
        log.exception("an HTTP process failed")
    finally:
        os._exit(code)
