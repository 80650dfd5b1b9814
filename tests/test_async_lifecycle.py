"""Close order, fd reuse, blocking mode, bad input, loop binding, cancellation."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading

import anyio
import pytest

from adapt import Async, ClosedResourceError

from ._util import fill, pipe, socketpair


async def test_close_wakes_every_waiter_then_closes(backend: str) -> None:
    with socketpair() as (_a, b):
        sock = b.dup()
        x = Async(sock)
        fill(sock)
        errors: list[BaseException] = []

        async def wait(op: str) -> None:
            try:
                if op == "read":
                    await x.recv(1)
                else:
                    await x.send(b"z" * 65536)
            except ClosedResourceError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for op in ("read", "read", "write", "write"):
                tg.start_soon(wait, op)
            await anyio.sleep(0.05)
            await x.aclose()
        assert len(errors) == 4
        assert sock.fileno() == -1  # the object itself is closed
        assert x.closed
        x.close()  # idempotent
        await x.aclose()


async def test_async_with_closes(backend: str) -> None:
    a, b = socket.socketpair()
    with b:
        async with Async(a) as x:
            b.send(b"1")
            assert await x.recv(1) == b"1"
        assert a.fileno() == -1


async def test_close_of_int_fd_closes_it(backend: str) -> None:
    r, w = os.pipe()
    os.close(w)
    x = Async(r)
    await x.aclose()
    with pytest.raises(OSError):
        os.fstat(r)


async def test_into_inner_wakes_waiters_and_does_not_close(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        errors = []

        async def read() -> None:
            try:
                await x.recv(1)
            except ClosedResourceError:
                errors.append(1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.02)
            assert x.into_inner() is a
        assert errors == [1]
        b.send(b"ok")
        assert a.recv(2) == b"ok"  # still open, blocking again


async def test_fd_reused_after_close_through_adapt(backend: str) -> None:
    for _ in range(3):
        a, b = socket.socketpair()
        with b:
            x = Async(a)
            b.send(b"x")
            await x.readable()  # registers the fd
            assert await x.recv(1) == b"x"
            closed = []

            async def wait(x: Async[socket.socket] = x, closed: list[int] = closed) -> None:
                try:
                    await x.readable()
                except ClosedResourceError:
                    closed.append(1)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(0.01)
                await x.aclose()  # closes with a registration in place
            assert closed == [1]
    # the same fd numbers get handed out again; each works
    with socketpair() as (a, b):
        x = Async(a)
        b.send(b"new")
        with anyio.fail_after(2):
            await x.readable()
            assert await x.recv(3) == b"new"
        x.into_inner()


async def test_fd_reused_after_close_behind_our_back(backend: str) -> None:
    a, b = socket.socketpair()
    x = Async(a)
    b.send(b"1")
    await x.readable()
    assert await x.recv(1) == b"1"
    fd = a.fileno()
    a.close()  # behind adapt's back: the loop may still have fd registered
    b.close()
    c, d = socket.socketpair()
    with c, d:
        if c.fileno() != fd:
            c, d = d, c
        assert c.fileno() == fd, "the kernel hands out the lowest free number"
        y = Async(c)
        d.send(b"2")
        with anyio.fail_after(2):  # asyncio's add_reader alone would hang here
            assert await y.recv(1) == b"2"
        y.into_inner()
        # the old wrapper knows its fd is gone
        with pytest.raises((ClosedResourceError, OSError)):
            await x.recv(1)
    del x


async def test_waiter_on_fd_closed_behind_our_back_is_rescued(backend: str) -> None:
    a, b = socket.socketpair()
    x = Async(a)
    errors: list[BaseException] = []

    async def stuck() -> None:
        try:
            await x.recv(1)
        except (ClosedResourceError, OSError) as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stuck)
        await anyio.sleep(0.02)
        fd = a.fileno()
        if backend.startswith("trio"):
            # trio requires notify_closing before an fd it waits on is closed
            import trio

            trio.lowlevel.notify_closing(fd)
        a.close()
        b.close()
        c, d = socket.socketpair()
        with c, d:
            if c.fileno() != fd:
                c, d = d, c
            y = Async(c)
            got: list[bytes] = []

            async def read_new() -> None:
                got.append(await y.recv(1))  # binding the reused number fails the stale waiter

            with anyio.fail_after(2):
                async with anyio.create_task_group() as tg2:
                    tg2.start_soon(read_new)
                    await anyio.sleep(0.02)
                    d.send(b"!")
            assert got == [b"!"]
            y.into_inner()
    assert len(errors) == 1


async def test_blocking_mode_set_and_restored_pipe(backend: str) -> None:
    with pipe() as (r, w):
        assert os.get_blocking(r)
        x = Async(r)
        assert not os.get_blocking(r)
        x.into_inner()
        assert os.get_blocking(r)
        os.set_blocking(w, False)
        y = Async(w)  # already non-blocking: left as it is
        y.into_inner()
        assert not os.get_blocking(w)


async def test_blocking_mode_set_and_restored_socket(backend: str) -> None:
    with socketpair() as (a, b):
        a.settimeout(5.0)
        x = Async(a)
        assert a.gettimeout() == 0.0
        x.into_inner()
        assert a.gettimeout() == 5.0
        y = Async(b, nonblocking=False)
        assert b.gettimeout() is None
        y.into_inner()


async def test_close_restores_mode_of_shared_description(backend: str) -> None:
    with pipe() as (r, _w):
        dup = os.dup(r)  # shares the file description (and its O_NONBLOCK)
        x = Async(dup)
        assert not os.get_blocking(r)
        await x.aclose()
        assert os.get_blocking(r)


def test_bad_input_errors() -> None:
    class NoFileno:
        pass

    class BadFileno:
        def fileno(self) -> str:
            return "3"

    with pytest.raises(TypeError, match="fileno"):
        Async(NoFileno())
    with pytest.raises(TypeError, match="bool"):
        Async(True)
    with pytest.raises(ValueError, match=">= 0"):
        Async(-1)
    with pytest.raises(TypeError, match="not an int"):
        Async(BadFileno())
    with pytest.raises(TypeError, match="fileno"):
        Async("3")  # type: ignore[arg-type]
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        Async(closed)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError, match="not open"):
        Async(r)
    with socketpair() as (a, _b):
        with pytest.raises(TypeError, match="exception types"):
            Async(a, would_block=(42,))  # type: ignore[arg-type]
        assert a.gettimeout() is None  # unchanged by the failed wrap
        x = Async(a)
        with pytest.raises(TypeError, match="already wrapped"):
            Async(x)
        x.into_inner()


def test_regular_files_and_directories_point_to_reader(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "f.bin")
    with open(path, "wb") as f:
        f.write(b"data")
    with open(path, "rb") as f:
        before = os.get_blocking(f.fileno())
        with pytest.raises(ValueError, match=r"adapt\.reader\(\)"):
            Async(f)
        assert os.get_blocking(f.fileno()) == before
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        with pytest.raises(ValueError, match=r"directory.*adapt\.reader"):
            Async(fd)
    finally:
        os.close(fd)


async def test_use_from_a_second_live_loop_is_an_error(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        async with anyio.create_task_group() as tg:
            tg.start_soon(x.readable)  # binds x to this loop
            await anyio.sleep(0.02)

            def other_thread() -> None:
                async def use() -> None:
                    await x.readable()

                with pytest.raises(RuntimeError, match="another event loop"):
                    asyncio.run(use())

            await anyio.to_thread.run_sync(other_thread)
            b.send(b"1")
        x.into_inner()


def test_wrapper_rebinds_to_the_next_loop_after_its_loop_ended() -> None:
    import trio

    with socketpair() as (a, b):
        x = Async(a)

        async def roundtrip() -> bytes:
            b.send(b"k")
            await x.readable()
            return await x.recv(1)

        assert asyncio.run(roundtrip()) == b"k"
        assert trio.run(roundtrip) == b"k"
        assert asyncio.run(roundtrip()) == b"k"
        x.into_inner()


async def test_cancelled_read_loses_nothing(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        for _ in range(20):
            with anyio.move_on_after(0.001):
                await x.recv(100)
        b.send(b"kept")
        with anyio.fail_after(2):
            assert await x.recv(100) == b"kept"
        x.into_inner()


async def test_cancelled_waiters_do_not_accumulate(backend: str) -> None:
    with socketpair() as (a, _b):
        x = Async(a)
        for _ in range(200):
            with anyio.move_on_after(0):
                await x.readable()
        reactor = x._reactor
        assert reactor is not None
        waiting = getattr(reactor, "readers", None)
        if waiting is None:
            waiting = reactor.leading  # type: ignore[attr-defined]
        assert a.fileno() not in waiting
        x.into_inner()


async def test_dropped_temporary_wrappers_leave_no_registration(backend: str) -> None:
    with socketpair() as (a, b):
        for i in range(50):
            b.send(b"%d," % i)
            await Async(a).readable()
            await Async(a).recv(10)
        # the harness checks that no registration is left in the loop


def test_importing_adapt_does_not_import_trio() -> None:
    code = "import sys, adapt; sys.exit('trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_no_thread_is_started() -> None:
    before = threading.active_count()

    async def main() -> None:
        with socketpair() as (a, b):
            x = Async(a)
            b.send(b"1")
            await x.recv(1)
            x.into_inner()

    asyncio.run(main())
    assert threading.active_count() == before
