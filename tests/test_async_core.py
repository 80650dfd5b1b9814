"""Semantics of Async.read_with / write_with: try first, directions, many waiters."""

from __future__ import annotations

import errno
import os
import socket
import ssl

import anyio
import pytest

from adapt import Async, ClosedResourceError, WantRead, WantWrite, WouldBlock

from ._util import fill, socketpair


async def test_try_first_never_waits_when_op_succeeds(backend: str) -> None:
    with socketpair() as (a, b):
        b.send(b"ready")
        x = Async(a)
        # the op succeeds at once: no wait, no loop registration
        assert await x.read_with(lambda s: s.recv(10)) == b"ready"
        assert await x.read_with(lambda s: "no io at all") == "no io at all"
        x.into_inner()


async def test_buffered_data_is_consumed_without_waiting(backend: str) -> None:
    # a library buffer (like SSL pending()) that the fd knows nothing about:
    # the fd is never readable, yet read_with returns the buffered items
    buffered = [b"1", b"2", b"3"]
    with socketpair() as (a, _b):
        x = Async(a)

        def op(_: socket.socket) -> bytes:
            if buffered:
                return buffered.pop(0)
            raise BlockingIOError

        with anyio.fail_after(2):
            got = [await x.read_with(op) for _ in range(3)]
        assert got == [b"1", b"2", b"3"]
        x.into_inner()


async def test_read_waits_then_retries(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        calls = 0

        def op(s: socket.socket) -> bytes:
            nonlocal calls
            calls += 1
            return s.recv(10)

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: anyio.sleep(0.05))
            result: list[bytes] = []

            async def read() -> None:
                result.append(await x.read_with(op))

            tg.start_soon(read)
            await anyio.sleep(0.02)
            assert calls == 1
            assert not result
            b.send(b"late")
        assert result == [b"late"]
        assert calls == 2
        x.into_inner()


async def test_write_waits_when_buffer_full(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        sent = fill(a)
        assert sent > 0
        done = anyio.Event()

        async def write() -> None:
            assert await x.write_with(lambda s: s.send(b"more")) == 4
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.sleep(0.02)
            assert not done.is_set()
            drained = 0
            while drained < sent:
                drained += len(b.recv(1 << 20))
        assert done.is_set()
        assert b.recv(10) == b"more"
        x.into_inner()


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (WouldBlock, "op direction"),
        (WantWrite, "write"),
        (WantRead, "read"),
        (ssl.SSLWantWriteError, "write"),
        (ssl.SSLWantReadError, "read"),
    ],
)
async def test_would_block_signals_pick_the_direction(
    backend: str, signal: type[BaseException], expected: str
) -> None:
    # `a` is writable at once but only readable after b sends: the time it
    # takes to come back tells which direction the wrapper waited in
    with socketpair() as (a, b):
        x = Async(a)
        attempts = 0

        def op(_: socket.socket) -> str:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise signal()
            return "done"

        async def feed() -> None:
            await anyio.sleep(0.2)
            b.send(b"r")

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            start = anyio.current_time()
            assert await x.write_with(op) == "done"
            elapsed = anyio.current_time() - start
        waited_for_read = elapsed >= 0.15
        assert waited_for_read == (expected == "read"), (signal, elapsed)
        assert attempts == 2
        x.into_inner()


async def test_interrupted_error_is_retried(backend: str) -> None:
    with socketpair() as (a, _b):
        x = Async(a)
        attempts = 0

        def op(_: socket.socket) -> int:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise InterruptedError(errno.EINTR, "interrupted")
            return attempts

        assert await x.read_with(op) == 3
        x.into_inner()


async def test_declared_would_block_exceptions(backend: str) -> None:
    class Again(Exception):
        pass

    with socketpair() as (a, b):
        x = Async(a, would_block=(Again, TimeoutError))
        state = {"n": 0}

        def op(s: socket.socket) -> bytes:
            state["n"] += 1
            if state["n"] == 1:
                raise Again
            if state["n"] == 2:
                raise TimeoutError  # an OSError subclass: declared, so it waits
            return s.recv(5)

        async with anyio.create_task_group() as tg:

            async def feed() -> None:
                for _ in range(2):
                    await anyio.sleep(0.02)
                    b.send(b"x")

            tg.start_soon(feed)
            assert await x.read_with(op) in (b"x", b"xx")
        assert state["n"] == 3
        x.into_inner()


async def test_other_exceptions_propagate_unchanged(backend: str) -> None:
    with socketpair() as (a, _b):
        x = Async(a)
        boom = ValueError("boom")

        def op(_: socket.socket) -> None:
            raise boom

        with pytest.raises(ValueError) as info:
            await x.read_with(op)
        assert info.value is boom
        with pytest.raises(ConnectionRefusedError):
            await x.read_with(lambda s: (_ for _ in ()).throw(ConnectionRefusedError()))
        x.into_inner()


async def test_many_waiters_all_wake(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        woke = []

        async def wait_readable(i: int) -> None:
            await x.readable()
            woke.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(wait_readable, i)
            await anyio.sleep(0.05)
            assert woke == []
            b.send(b"!")
        assert sorted(woke) == list(range(10))
        x.into_inner()


async def test_many_readers_share_the_messages(backend: str) -> None:
    with socketpair(type=socket.SOCK_DGRAM) as (a, b):
        x = Async(a)
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await x.recv(100))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(reader)
            await anyio.sleep(0.05)
            for i in range(5):
                b.send(b"m%d" % i)
                await anyio.sleep(0.01)
        assert sorted(got) == [b"m%d" % i for i in range(5)]
        x.into_inner()


async def test_two_wrappers_of_one_fd_share_the_registration(backend: str) -> None:
    with socketpair() as (a, b):
        x, y = Async(a), Async(a.fileno())
        woke = []

        async def wait(w: Async[object], name: str) -> None:
            await w.readable()
            woke.append(name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, x, "sock")
            tg.start_soon(wait, y, "fd")
            await anyio.sleep(0.05)
            b.send(b"!")
        assert sorted(woke) == ["fd", "sock"]
        y.into_inner()
        x.into_inner()


async def test_readable_writable(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        with anyio.fail_after(1):
            await x.writable()
        with anyio.move_on_after(0.05) as scope:
            await x.readable()
        assert scope.cancelled_caught
        b.send(b"1")
        with anyio.fail_after(1):
            await x.readable()
        x.into_inner()


async def test_eof_wakes_reader_and_surfaces_from_op(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        async with anyio.create_task_group() as tg:
            got: list[bytes] = []

            async def read() -> None:
                got.append(await x.recv(10))

            tg.start_soon(read)
            await anyio.sleep(0.02)
            b.close()
        assert got == [b""]
        x.into_inner()


async def test_hangup_wakes_writer_with_the_error(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        fill(a)

        errors: list[BaseException] = []

        async def write() -> None:
            try:
                await x.send(b"y" * 65536)
            except OSError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.sleep(0.02)
            assert not errors  # still waiting for room
            b.close()
        assert len(errors) == 1
        assert isinstance(errors[0], (BrokenPipeError, ConnectionResetError))
        x.into_inner()


async def test_pipe_hangup_wakes_reader(backend: str) -> None:
    r, w = os.pipe()
    x = Async(r)
    async with anyio.create_task_group() as tg:
        got: list[bytes] = []

        async def read() -> None:
            got.append(await x.read(10))

        tg.start_soon(read)
        await anyio.sleep(0.02)
        os.close(w)
    assert got == [b""]
    await x.aclose()


async def test_closed_wrapper_refuses_ops(backend: str) -> None:
    with socketpair() as (a, _b):
        x = Async(a.dup())
        await x.aclose()
        with pytest.raises(ClosedResourceError):
            await x.read_with(lambda s: s.recv(1))
        with pytest.raises(ClosedResourceError):
            await x.readable()


async def test_busy_reader_does_not_starve_other_tasks(backend: str) -> None:
    with socketpair() as (a, b):
        b.sendall(b"z" * 20000)
        x = Async(a)
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.sleep(0)
            start = ticks
            for _ in range(20000):  # never has to wait: data is all there
                await x.recv(1)
            assert ticks - start >= 20000 // 64 - 1
            done = True
        x.into_inner()
