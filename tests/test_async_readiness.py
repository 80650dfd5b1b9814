"""Readiness that is not the fd's: waking waiters, ``wait=``, fds that
never become ready, busy loops, and objects whose fileno() changes."""

from __future__ import annotations

import os
import socket
import time

import anyio
import pytest

from adapt import Async, WouldBlock

from ._util import fill, pipe, socketpair


class _Counted:
    """An op that counts its attempts and would block until ``open``."""

    def __init__(self, result: object = "done") -> None:
        self.attempts = 0
        self.open = False
        self.result = result

    def __call__(self, _: object) -> object:
        self.attempts += 1
        if not self.open:
            raise WouldBlock
        return self.result


async def _until(predicate: object, limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.001)


# -- wake() ---------------------------------------------------------------


async def test_wake_makes_waiters_retry_without_closing(backend: str) -> None:
    with socketpair() as (a, _b):
        a.setblocking(False)
        fill(a)  # a's writes would block too
        wrapper = Async(a)
        other = Async(a)  # a second wrapper of the same fd
        reader, writer, third = _Counted("r"), _Counted("w"), _Counted("o")
        results: list[object] = []
        async with anyio.create_task_group() as tg:

            async def run(coro_fn: object) -> None:
                results.append(await coro_fn())  # type: ignore[operator]

            tg.start_soon(run, lambda: wrapper.read_with(reader))
            tg.start_soon(run, lambda: wrapper.write_with(writer))
            tg.start_soon(run, lambda: other.read_with(third))
            await _until(lambda: reader.attempts == writer.attempts == third.attempts == 1)
            await anyio.sleep(0.05)
            assert (reader.attempts, writer.attempts, third.attempts) == (1, 1, 1)

            wrapper.wake()
            # (a wake-up may be followed by a spurious one: >= 2)
            await _until(lambda: min(reader.attempts, writer.attempts, third.attempts) >= 2)
            await anyio.sleep(0.05)
            assert not wrapper.closed
            assert results == []  # they wait again

            reader.open = writer.open = third.open = True
            wrapper.wake()
        assert sorted(map(str, results)) == ["o", "r", "w"]
        wrapper.into_inner()
        other.into_inner()


async def test_wake_with_nobody_waiting_is_a_no_op(backend: str) -> None:
    with socketpair() as (a, b):
        wrapper = Async(a)
        wrapper.wake()  # never waited: nothing to do
        b.send(b"x")
        assert await wrapper.recv(1) == b"x"
        wrapper.wake()
        wrapper.close()
        wrapper.wake()  # closed: nothing to do


# -- wait= ------------------------------------------------------------------


async def test_write_with_can_wait_for_readable(backend: str) -> None:
    # An always-writable notification fd (an eventfd, like zmq's FD): the
    # op's progress is signalled by readability.
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        wrapper = Async(efd)
        op = _Counted()
        async with anyio.create_task_group() as tg:

            async def send() -> None:
                assert await wrapper.write_with(op, wait="readable") == "done"

            tg.start_soon(send)
            await anyio.sleep(0.3)
            # parked, not spinning on the always-writable fd
            assert op.attempts == 1
            op.open = True
            os.eventfd_write(efd, 1)
        assert op.attempts == 2
        wrapper.into_inner()
    finally:
        os.close(efd)


async def test_read_with_can_wait_for_writable(backend: str) -> None:
    with socketpair() as (a, b):
        a.setblocking(False)
        size = fill(a)
        wrapper = Async(a)
        op = _Counted()
        async with anyio.create_task_group() as tg:

            async def recv() -> None:
                assert await wrapper.read_with(op, wait="writable") == "done"

            tg.start_soon(recv)
            await anyio.sleep(0.1)
            assert op.attempts == 1
            op.open = True
            got = 0
            while got < size:  # drain b: a becomes writable
                got += len(b.recv(1 << 20))
        assert op.attempts == 2
        wrapper.into_inner()


async def test_bad_wait_argument(backend: str) -> None:
    with socketpair() as (a, _):
        wrapper = Async(a)
        with pytest.raises(ValueError, match="wait= takes 'readable' or 'writable'"):
            await wrapper.write_with(_Counted(), wait="read")  # type: ignore[arg-type]
        wrapper.into_inner()


# -- fds that never become ready in a direction -----------------------------


async def test_write_wait_on_a_read_only_fd_is_refused(backend: str) -> None:
    # paramiko's Channel.fileno() is a pipe's read end: never writable
    with pipe() as (r, w):
        wrapper = Async(r)
        op = _Counted()
        with anyio.fail_after(5), pytest.raises(ValueError, match="wait='readable'") as info:
            await wrapper.write_with(op)
        assert "read-only" in str(info.value)
        with anyio.fail_after(5), pytest.raises(ValueError, match="read-only"):
            await wrapper.writable()
        # the readable direction is fine, and nothing changed
        os.write(w, b"x")
        op.open = True
        assert await wrapper.write_with(op, wait="readable") == "done"
        wrapper.into_inner()


async def test_read_wait_on_a_write_only_fd_is_refused(backend: str) -> None:
    with pipe() as (_r, w):
        wrapper = Async(w)
        with anyio.fail_after(5), pytest.raises(ValueError, match="write-only"):
            await wrapper.read_with(_Counted())
        wrapper.into_inner()


# -- busy loops ---------------------------------------------------------------


async def test_a_write_wait_on_an_always_writable_fd_is_a_clear_error(backend: str) -> None:
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        wrapper = Async(efd)
        op = _Counted()
        with anyio.fail_after(10), pytest.raises(RuntimeError, match="busy loop") as info:
            await wrapper.write_with(op)
        assert "wait=" in str(info.value)
        assert op.attempts <= 4 * 1024 + 1
        wrapper.into_inner()
    finally:
        os.close(efd)


async def test_spurious_wakeups_at_a_slow_pace_are_no_busy_loop(backend: str) -> None:
    # a task that is woken often but not in a tight loop keeps waiting
    with socketpair() as (a, _b):
        wrapper = Async(a)
        op = _Counted()
        async with anyio.create_task_group() as tg:

            async def recv() -> None:
                assert await wrapper.read_with(op) == "done"

            tg.start_soon(recv)
            start = time.monotonic()
            while op.attempts < 2100:
                before = op.attempts
                wrapper.wake()
                await _until(lambda: op.attempts > before)  # noqa: B023
                if op.attempts % 1024 == 0:
                    await anyio.sleep(0.11)
            assert time.monotonic() - start < 20
            op.open = True
            wrapper.wake()
        wrapper.into_inner()


# -- objects whose fileno() changes ---------------------------------------


class _Reconnecting:
    """A connection that swaps in a new socket (libpq's multi-host connect
    does that mid-connect); ``fileno()`` names the current one."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.quiet: list[socket.socket] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def swap(self, *, reuse_number: bool) -> None:
        old = (self.sock, self.peer)
        if reuse_number:
            for s in old:
                s.close()
            self.sock, self.peer = socket.socketpair()
        else:
            self.sock, self.peer = socket.socketpair()
            for s in old:
                s.close()
            # the old numbers now name quiet sockets: waiting on them hangs
            self.quiet.extend(socket.socketpair())
        self.sock.setblocking(False)

    def close(self) -> None:
        for s in (self.sock, self.peer, *self.quiet):
            s.close()


@pytest.mark.parametrize("reuse_number", [False, True])
async def test_an_object_whose_fileno_changes_is_followed(backend: str, reuse_number: bool) -> None:
    conn = _Reconnecting()
    try:
        wrapper = Async(conn, nonblocking=False)
        conn.sock.setblocking(False)
        swapped = False

        def op(c: _Reconnecting) -> bytes:
            nonlocal swapped
            if not swapped:  # the first attempt reconnects, then would block
                swapped = True
                c.swap(reuse_number=reuse_number)
            return c.sock.recv(10)

        async with anyio.create_task_group() as tg:

            async def recv() -> None:
                assert await wrapper.read_with(op) == b"hello"

            tg.start_soon(recv)
            await anyio.sleep(0.05)
            assert swapped
            conn.peer.send(b"hello")
        assert wrapper.fileno() == conn.sock.fileno()
        wrapper.into_inner()
    finally:
        conn.close()


async def test_waiters_on_the_old_fd_follow_the_new_one(backend: str) -> None:
    conn = _Reconnecting()
    try:
        wrapper = Async(conn, nonblocking=False)
        conn.sock.setblocking(False)
        got: list[bytes] = []
        async with anyio.create_task_group() as tg:

            async def recv() -> None:
                got.append(await wrapper.read_with(lambda c: c.sock.recv(10)))

            tg.start_soon(recv)
            await anyio.sleep(0.05)  # parked on the first socket
            conn.swap(reuse_number=False)
            # another task's wait notices the new fd and wakes the parked one
            with anyio.move_on_after(0.05):
                await wrapper.readable()
            conn.peer.send(b"hello")
        assert got == [b"hello"]
        wrapper.into_inner()
    finally:
        conn.close()
