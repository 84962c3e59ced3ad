"""The test servers' start: a port taken between its pick and the server's bind (by a
process outside the tests' port shares) gives the server another port, not an error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.server_support import make_server

pytestmark = pytest.mark.integration


def test_a_taken_port_moves_the_server_to_another(tmp_path: Path) -> None:
    server = make_server(tmp_path, None)
    taken = server.port
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        server.start(workers=0)
        try:
            assert server.port != taken
            with server.api("viewer") as viewer:
                assert viewer.get("/runs").status_code == 200
        finally:
            server.stop()
