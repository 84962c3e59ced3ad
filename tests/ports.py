"""Ports for the servers and engines a test starts on 127.0.0.1.

The tests run in two processes (scripts/test.sh). A port picked by binding port 0 and
closing the socket is free only for a moment: the other process could pick it too, and a
server that then fails to bind would be answered for by the other test's server. So each
test process picks only its own ports: process N of K takes ports p with p % K == N, from
below the kernel's ephemeral range (which the engines' own sockets use)."""

from __future__ import annotations

import os
import random
import socket

LOW, HIGH = 20_000, 32_000


def free_port() -> int:
    """A port nothing listens on now, that no other test process will pick."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % count
    for _ in range(1000):
        port = random.randrange(LOW, HIGH)
        port -= (port - index) % count  # this process's share
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: another try
        return port
    raise RuntimeError(f"no free port between {LOW} and {HIGH}")
