"""Small helpers shared by the tests (loop-agnostic, via anyio)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def socketpair(**kw: int) -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(**kw)
    with a, b:
        yield a, b


@contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


def fill(sock: socket.socket) -> int:
    """Fill the send buffer of a non-blocking socket; return bytes written."""
    total = 0
    chunk = b"x" * 65536
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            return total
