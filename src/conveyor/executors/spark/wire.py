"""The wire between a Spark task and the driver's channel: a 4-byte big-endian length,
a JSON header, then ``size`` raw bytes when the header has a ``size``.

Shipped to the workers by value with ``worker`` (standard library only).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

_LENGTH = "!I"  # a format, not a struct.Struct: this module is pickled by value
_LENGTH_SIZE = 4
CHUNK = 1 << 20

Header = dict[str, Any]


class DriverGone(Exception):
    """The driver closed the connection: the run ended or the driver died."""


def send(sock: socket.socket, header: Header, data: bytes = b"") -> None:
    body = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(struct.pack(_LENGTH, len(body)) + body + data)


def recv(sock: socket.socket) -> Header:
    (length,) = struct.unpack(_LENGTH, recv_exact(sock, _LENGTH_SIZE))
    header: Header = json.loads(recv_exact(sock, length))
    return header


def recv_exact(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise DriverGone("connection closed")
        got += n
    return bytes(buffer)


def recv_file(sock: socket.socket, path: str, size: int, mode: int) -> None:
    """Write the next ``size`` bytes of the stream into ``path``."""
    with open(path, "wb") as out:
        left = size
        while left:
            data = sock.recv(min(left, CHUNK))
            if not data:
                raise DriverGone("connection closed")
            out.write(data)
            left -= len(data)
    os.chmod(path, mode & 0o777)


def send_file(sock: socket.socket, header: Header, path: str) -> None:
    with open(path, "rb") as source:
        info = os.fstat(source.fileno())
        size = info.st_size
        send(sock, {**header, "size": size, "mode": info.st_mode & 0o777})
        if size and sock.sendfile(source, 0, size) != size:
            raise OSError(f"{path} shrank while it was being sent")


def safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not os.path.isabs(path) and ".." not in parts
