"""Predicted waits (``adapt/_core/_predict.py``) and the trio backend's fast path."""

from __future__ import annotations

import errno
import os
import pty
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import anyio
import pytest

from adapt import Async, AsyncSocket
from adapt._core._predict import DONE, DONE_WAITED, NEVER, START, initial
from adapt._errors import READ, WRITE

from ._util import socketpair

ROUNDS = 200


def test_states() -> None:
    with socket.socket() as sock:
        state = initial(sock)
    assert state == 0
    state = DONE_WAITED[READ][state]  # a read that had to wait
    state = DONE[WRITE][state]  # then a write
    started = START[READ][state]
    assert started > state  # the next read waits first
    state = DONE_WAITED[READ][started]
    state = DONE[WRITE][state]
    # every 32nd predicted wait is a probe: it tries first
    probes = 0
    for _ in range(64):
        started = START[READ][state]
        probes += started < state
        state = DONE_WAITED[READ][started]
        state = DONE[WRITE][state]
    assert probes == 2
    # a probe that found data drops the prediction
    started = START[READ][state]
    state = DONE[READ][started]
    assert START[READ][DONE[WRITE][state]] == DONE[WRITE][state]
    # two reads in a row: the second tries first
    state = DONE_WAITED[READ][0]
    assert START[READ][state] == state


def test_only_direct_objects_predict() -> None:
    class Buffered(socket.socket):
        pass

    with socket.socket() as plain, Buffered() as sub, socket.socket() as lowat:
        assert initial(plain) == 0
        assert initial(sub) == NEVER  # a subclass may buffer in user space
        lowat.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 10)
        assert initial(lowat) == NEVER  # readable only at the low-water mark
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as f, open(w, "wb", buffering=0):
        assert initial(f) == 0
    master, slave = pty.openpty()
    with open(master, "rb", buffering=0) as f, open(slave, "rb", buffering=0):
        assert initial(f) == NEVER  # a terminal in raw mode waits for VMIN bytes
    assert initial(r) == NEVER  # an int fd: nothing tells a closed one without a syscall
    assert all(START[d][NEVER] == NEVER for d in (READ, WRITE))
    assert all(table[d][NEVER] == NEVER for table in (DONE, DONE_WAITED) for d in (READ, WRITE))


@contextmanager
def failed_recvs() -> Iterator[list[int]]:
    """Count ``recv`` calls that raised, in this thread."""
    count = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_exception" and getattr(arg, "__name__", None) == "recv":
            count[0] += 1

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)


async def test_request_response_skips_failing_recvs(backend: str) -> None:
    with socketpair() as (a, b):
        client, server = Async(a), Async(b)

        async def serve() -> None:
            for _ in range(ROUNDS):
                request = await server.recv(64)
                await server.sendall(request)

        with failed_recvs() as failed:
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve)
                for i in range(ROUNDS):
                    await client.sendall(b"%d" % i)
                    assert await client.recv(64) == b"%d" % i
        client.into_inner()
        server.into_inner()
    # try-first alone fails once per recv on each side: 2 * ROUNDS
    assert failed[0] < ROUNDS / 2, failed[0]


async def test_predicted_wait_returns_data_already_there(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        for i in range(10):  # a request/response pattern: reads are predicted to wait
            await x.send(b"q")
            assert b.recv(1) == b"q"
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 0.001)
                with anyio.fail_after(5):
                    if i % 2:
                        b.send(b"r")  # already there when the read starts
                    else:
                        tg.start_soon(_send_later, b, b"r")
                    assert await x.recv(1) == b"r"
        x.into_inner()


async def _send_later(sock: socket.socket, data: bytes) -> None:
    await anyio.sleep(0.002)
    sock.send(data)


async def test_subclass_with_own_buffer_is_never_predicted(backend: str) -> None:
    class Buffered(socket.socket):
        """A socket whose recv can return data the kernel no longer holds."""

        pending = b""

        def recv(self, n: int, flags: int = 0, /) -> bytes:
            if self.pending:
                data, self.pending = self.pending[:n], self.pending[n:]
                return data
            return super().recv(n, flags)

    a0, b = socket.socketpair()
    a = Buffered(fileno=a0.detach())
    with a, b:
        x = Async(a)
        for _ in range(3):
            await x.send(b"q")
            assert b.recv(1) == b"q"
            b.send(b"r")
            assert await x.recv(1) == b"r"  # waited: the last read had to wait
        await x.send(b"q")
        a.pending = b"buffered"  # data in user space, fd not readable
        with anyio.fail_after(5):
            assert await x.recv(64) == b"buffered"
        x.into_inner()


async def _predicting(x: AsyncSocket, peer: socket.socket) -> None:
    """Bring ``x`` into the request/response pattern: its next recv waits first."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_send_later, peer, b"r")
        assert await x.recv(1) == b"r"  # a read that waited
    await x.send(b"q")  # then a write
    assert peer.recv(1) == b"q"


async def test_closed_behind_adapts_back_raises_not_hangs(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        await _predicting(x, b)
        a.close()  # behind adapt's back: a predicted wait would watch a dead fd
        with anyio.fail_after(5):
            for _ in range(2):
                with pytest.raises(OSError) as info:
                    await x.recv(1)
                assert info.value.errno == errno.EBADF
        x.close()


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


async def test_flags_are_never_predicted(backend: str) -> None:
    client, server = _tcp_pair()
    with client, server:
        x = Async(client)
        await _predicting(x, server)
        server.send(b"!", socket.MSG_OOB)  # signalled by EPOLLPRI, not EPOLLIN
        await anyio.sleep(0.05)
        with anyio.fail_after(5):
            assert await x.recv(1, socket.MSG_OOB) == b"!"
        x.into_inner()


# -- the trio backend's fast path ---------------------------------------------


@pytest.mark.backends("trio")
async def test_trio_fast_path_in_use(backend: str) -> None:
    from adapt._backends._trio import _REACTOR

    with socketpair() as (a, b):
        x = Async(a)
        b.send(b"1")
        await x.readable()
        assert _REACTOR.get().io is not None
        x.into_inner()


@pytest.mark.backends("trio")
async def test_trio_interrupted_before_parking_leaves_no_registration(backend: str) -> None:
    import trio

    with socketpair() as (a, b):
        x = Async(a)
        before = trio.lowlevel.current_statistics().io_statistics.tasks_waiting_read
        reactor = x._bind()
        waiter = reactor.wait(a.fileno(), READ)
        waiter.send(None)  # registered; the next step would park the task
        assert trio.lowlevel.current_statistics().io_statistics.tasks_waiting_read == before + 1
        with pytest.raises(KeyboardInterrupt):  # as if one landed before the wait parked
            waiter.throw(KeyboardInterrupt())
        assert trio.lowlevel.current_statistics().io_statistics.tasks_waiting_read == before
        assert a.fileno() not in reactor.leading
        b.send(b"1")
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(a)  # not BusyResourceError
            assert await x.recv(1) == b"1"
        x.into_inner()


@pytest.mark.backends("trio")
async def test_trio_failed_registration_does_not_wedge_the_fd(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trio

    with socketpair() as (a, b):
        x = Async(a)
        io = x._bind().io
        manager = type(io)
        real = manager._update_registrations

        def fail_once(self: Any, fd: int) -> None:
            # what trio does when epoll_ctl fails: drop the entry, raise to the caller
            monkeypatch.setattr(manager, "_update_registrations", real)
            self._registered.pop(fd)
            raise OSError(errno.ENOSPC, "no space for another epoll watch")

        monkeypatch.setattr(manager, "_update_registrations", fail_once)
        with pytest.raises(OSError):
            await x.recv(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_send_later, b, b"1")
            with trio.fail_after(5):
                assert await x.recv(1) == b"1"  # not a follower of a leader that never was
        x.into_inner()
