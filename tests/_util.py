"""Small helpers shared by the tests (loop-agnostic, via anyio)."""

from __future__ import annotations

import os
import socket
import time
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


def held_clock() -> float:
    """``time.monotonic()`` less the time the calling thread has spent ready to
    run but waiting for a CPU (its run delay, ``/proc/thread-self/schedstat``).

    A gap between two readings in a loop's thread counts whatever held the
    loop up -- its own code, a blocking call, a wait for the GIL -- but not
    other processes taking the CPUs: beside 8 busy processes on its CPU, the
    loop of a transfer test waited up to 0.78 s at a time for a CPU alone.
    """
    while True:
        before = _run_delay()
        now = time.monotonic()
        if _run_delay() == before:  # (not pre-empted between the two readings)
            return now - before / 1e9


def _run_delay() -> int:
    with open("/proc/thread-self/schedstat", "rb") as f:
        return int(f.read().split()[1])
