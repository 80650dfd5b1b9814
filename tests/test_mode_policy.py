"""Which fds ``Async(obj)`` puts in non-blocking mode by itself.

adapt changes the mode only of kinds it knows (sockets, ``io.FileIO``, int
fds, multiprocessing connections, registered shim classes).  For any other
object the caller chooses with ``nonblocking=``; leaving it out is an error
that names the choice and changes nothing.
"""

from __future__ import annotations

import os
import select
import socket
from typing import Any

import pytest
import serial

from adapt import Async


class _Channel:
    """A library object that looks like a socket but is none (like a
    paramiko Channel): ``fileno()`` is a pipe's read end, and its
    ``settimeout()`` is its own business."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.timeouts: list[float | None] = []

    def fileno(self) -> int:
        return self.r

    def gettimeout(self) -> float | None:
        return None

    def settimeout(self, timeout: float | None) -> None:
        self.timeouts.append(timeout)

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_unknown_kind_needs_a_choice_and_is_left_unchanged() -> None:
    chan = _Channel()
    try:
        with pytest.raises(TypeError, match=r"nonblocking=False\).*nonblocking=True\)") as info:
            Async(chan)
        assert "'_Channel'" in str(info.value)
        assert os.get_blocking(chan.r)
        assert chan.timeouts == []
    finally:
        chan.close()


def test_an_explicit_choice_on_an_unknown_kind() -> None:
    chan = _Channel()
    try:
        kept = Async(chan, nonblocking=False)
        assert os.get_blocking(chan.r)
        assert chan.timeouts == []
        kept.into_inner()
        made = Async(chan, nonblocking=True)
        # O_NONBLOCK on its fd; its settimeout() -- no socket's -- is not called
        assert not os.get_blocking(chan.r)
        assert chan.timeouts == []
        made.into_inner()
        assert os.get_blocking(chan.r)  # restored
    finally:
        chan.close()


def test_real_library_objects_of_unknown_kinds() -> None:
    master, slave = os.openpty()
    port: Any = serial.serial_for_url(os.ttyname(slave), do_not_open=False)
    poller = select.epoll()
    try:
        for obj in (port, poller):
            with pytest.raises(TypeError, match="nonblocking="):
                Async(obj)
        Async(poller, nonblocking=False).into_inner()
    finally:
        port.close()
        poller.close()
        os.close(master)
        os.close(slave)


class _MySocket(socket.socket):
    pass


def test_known_kinds_are_made_nonblocking_by_default() -> None:
    a, b = socket.socketpair()
    mine = _MySocket(fileno=os.dup(b.fileno()))
    r, w = os.pipe()
    f = open(r, "rb", buffering=0)  # noqa: SIM115 (closed below)
    try:
        wrappers = [Async(a), Async(mine), Async(f), Async(w)]
        assert a.gettimeout() == 0.0
        assert mine.gettimeout() == 0.0
        assert not os.get_blocking(r)
        assert not os.get_blocking(w)
        for wrapper in wrappers:
            wrapper.into_inner()
        assert a.gettimeout() is None
        assert mine.gettimeout() is None
        assert os.get_blocking(r)
        assert os.get_blocking(w)
    finally:
        for obj in (a, b, mine, f):
            obj.close()
        os.close(w)
