"""The reliability matrix of the readiness core.

Every async case runs on asyncio, asyncio in debug mode (with the loop-stall
guard), uvloop, trio and trio without the backend's fast path (see
conftest).  The harness checks after each case that no registration is left
in adapt, in the loop and in the kernel's epoll interest list.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from adapt import Async, ClosedResourceError

from ._kinds import KINDS, Opened, open_on
from ._util import fill, socketpair

KIND_NAMES = tuple(KINDS)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _kind(name: str) -> Iterator[Opened]:
    opened = KINDS[name]()
    try:
        yield opened
    finally:
        opened.close()


async def _bounded_cpu(seconds: float = 0.2) -> None:
    """The loop does not spin while nothing happens (one core's worth is 1.0)."""
    start = _cpu()
    await anyio.sleep(seconds)
    used = _cpu() - start
    assert used < seconds * 0.5, f"the loop spun: {used:.3f} s of CPU in {seconds} s"


# -- cancellation at every point of a wait -------------------------------------

POINTS = ("already-cancelled", "parked", "ready-and-cancelled", "after-the-op")


@pytest.mark.parametrize("point", POINTS)
async def test_cancellation_at_every_point_loses_nothing(backend: str, point: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        got = bytearray()
        if point == "already-cancelled":
            with anyio.CancelScope() as scope:
                scope.cancel()
                got += await x.recv(10)  # nothing there: the wait is cancelled
            b.send(b"1")
            with anyio.CancelScope() as scope:
                scope.cancel()
                got += await x.recv(10)  # data there: try-first returns it
        elif point == "parked":
            with anyio.move_on_after(0.02):
                got += await x.recv(10)
            b.send(b"1")
        elif point == "ready-and-cancelled":
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def read() -> None:
                    with scope:
                        got.extend(await x.recv(10))

                tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()  # the tasks wait now
                b.send(b"1")  # readiness and cancellation in one loop iteration
                scope.cancel()
        else:
            b.send(b"1")
            with anyio.CancelScope() as scope:
                got += await x.recv(10)
                scope.cancel()  # after the op: the result was already returned
        b.send(b"2")
        with anyio.fail_after(2):
            while b"2" not in got:
                got += await x.recv(10)
        assert bytes(got) == b"12"  # nothing lost, duplicated or reordered
        x.into_inner()


async def test_cancelled_write_wait_sends_nothing_twice(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        sent = fill(a)
        for _ in range(5):
            with anyio.move_on_after(0.01):
                sent += await x.send(b"y" * 1000)
        received = 0
        b.setblocking(False)
        with anyio.fail_after(5):
            while received < sent:
                try:
                    received += len(b.recv(1 << 20))
                except BlockingIOError:
                    await anyio.sleep(0.001)
        assert received == sent
        x.into_inner()


# -- close while a reader and a writer wait ------------------------------------


@pytest.mark.parametrize("through", ["same", "sibling", "into_inner"])
async def test_close_while_a_reader_and_a_writer_wait(backend: str, through: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        x = Async(a)
        closer = x if through != "sibling" else Async(a)
        fill(a)
        outcomes: list[str] = []

        async def wait(op: str) -> None:
            try:
                if op == "read":
                    await x.recv(1)
                else:
                    await x.send(b"z" * 65536)
                outcomes.append("returned")
            except ClosedResourceError:
                outcomes.append("closed")

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, "read")
                tg.start_soon(wait, "write")
                await anyio.wait_all_tasks_blocked()  # the tasks wait now
                if through == "into_inner":
                    closer.into_inner()
                else:
                    await closer.aclose()
        assert outcomes == ["closed", "closed"]
        assert (a.fileno() == -1) == (through != "into_inner")


# -- an fd closed behind adapt's back -------------------------------------------


@pytest.mark.parametrize("dup", [False, True], ids=["no-dup", "live-dup"])
@pytest.mark.parametrize("when", ["between-waits", "while-waiting"])
async def test_fd_closed_behind_our_back(backend: str, when: str, dup: bool) -> None:
    r, w = os.pipe()
    copy = os.dup(r) if dup else -1
    try:
        x = Async(r)
        os.write(w, b"1")
        assert await x.read(1) == b"1"  # a wait, or not: nothing stays registered
        errors: list[BaseException] = []

        async def read() -> None:
            try:
                await x.read(1)
            except (ClosedResourceError, OSError) as exc:
                errors.append(exc)

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                if when == "while-waiting":
                    tg.start_soon(read)
                    await anyio.wait_all_tasks_blocked()  # the tasks wait now
                    await anyio.sleep(0.01)  # and the loop polled since (see docs/reliability.rst)
                os.close(r)  # behind adapt's back
                if when == "between-waits":
                    with pytest.raises(OSError):
                        await x.read(1)  # the op reports it at once
                else:
                    await x.aclose()  # wakes the waiter: the number is not reused
        assert len(errors) == (1 if when == "while-waiting" else 0)
        await x.aclose()
        if dup and when == "between-waits":
            os.write(w, b"2")  # the file lives on, readable: nothing is registered
        await _bounded_cpu()
    finally:
        os.close(w)
        if copy >= 0:
            os.close(copy)


async def test_fd_closed_behind_our_back_while_waiting_with_data_via_dup(backend: str) -> None:
    """The waiter wakes (the live file is readable) and its op reports EBADF."""
    r, w = os.pipe()
    copy = os.dup(r)
    try:
        x = Async(r)
        errors: list[BaseException] = []

        async def read() -> None:
            try:
                await x.read(1)
            except OSError as exc:
                errors.append(exc)

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()  # the tasks wait now
                await anyio.sleep(0.01)  # and the loop polled since (see docs/reliability.rst)
                os.close(r)
                os.write(w, b"2")
        assert len(errors) == 1
        await x.aclose()
    finally:
        os.close(w)
        os.close(copy)  # the kernel drops the dead registration with the file
    await _bounded_cpu()


# -- fd number reuse, every kind ------------------------------------------------


@pytest.mark.parametrize("how", ["cancelled", "woken", "closed-by-adapt", "closed-behind"])
@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_fd_number_reuse(backend: str, kind: str, how: str) -> None:
    old = KINDS[kind]()
    try:
        x = Async(old.fd)
        if how == "cancelled":
            with anyio.move_on_after(0.01):
                await x.readable()
        else:
            old.poke()
            with anyio.fail_after(2):
                await x.readable()
            old.drain()
        number = old.fd
        if how == "closed-by-adapt":
            await x.aclose()
        else:
            old.close_fd_only()
    finally:
        old.close()
    new = open_on(kind, number)
    try:
        y = Async(new.fd)

        async def poke_later() -> None:
            await anyio.sleep(0.02)
            new.poke()

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(poke_later)
                await y.readable()
        y.into_inner()
        if how == "closed-by-adapt":
            await x.aclose()  # idempotent: does not touch the new file
        # (an int fd closed behind adapt's back: its wrapper is dropped, which
        # touches nothing -- closing it could not tell a reused anonymous
        # inode from the old file)
        del x
        os.fstat(new.fd)
    finally:
        new.close()


# -- EOF, hang-up and errors, per kind and direction ----------------------------


async def test_socket_read_eof_and_write_after_hangup(backend: str) -> None:
    a, b = socket.socketpair()
    with a:
        x = Async(a)
        async with anyio.create_task_group() as tg:

            async def hang_up() -> None:
                await anyio.sleep(0.02)
                b.close()

            tg.start_soon(hang_up)
            with anyio.fail_after(2):
                assert await x.recv(10) == b""  # EOF wakes the parked reader
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await _send_until_it_fails(x)
        x.into_inner()


async def test_socket_writer_parked_on_a_full_buffer_wakes_on_hangup(backend: str) -> None:
    a, b = socket.socketpair()
    with a:
        x = Async(a)
        fill(a)
        async with anyio.create_task_group() as tg:

            async def hang_up() -> None:
                await anyio.sleep(0.02)
                b.close()

            tg.start_soon(hang_up)
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                await _send_until_it_fails(x)
        x.into_inner()


async def _send_until_it_fails(x: Async[socket.socket]) -> None:
    with anyio.fail_after(2):
        while True:
            await x.send(b"z" * 65536)


async def test_pipe_read_eof_and_write_to_a_closed_reader(backend: str) -> None:
    r, w = os.pipe()
    x, y = Async(r), Async(w)
    async with anyio.create_task_group() as tg:

        async def hang_up() -> None:
            await anyio.sleep(0.02)
            await y.aclose()

        tg.start_soon(hang_up)
        with anyio.fail_after(2):
            assert await x.read(10) == b""
    r2, w2 = os.pipe()
    z = Async(w2)
    while True:
        try:
            os.write(w2, b"z" * 65536)
        except BlockingIOError:
            break
    async with anyio.create_task_group() as tg:

        async def close_reader() -> None:
            await anyio.sleep(0.02)
            os.close(r2)

        tg.start_soon(close_reader)
        with pytest.raises(BrokenPipeError):
            with anyio.fail_after(2):
                await z.write(b"z" * 65536)  # parked on a full pipe, woken by the hang-up
    await x.aclose()
    await z.aclose()


async def test_pty_read_after_the_other_side_closed(backend: str) -> None:
    master, slave = os.openpty()
    x = Async(master)
    async with anyio.create_task_group() as tg:

        async def hang_up() -> None:
            await anyio.sleep(0.02)
            os.close(slave)

        tg.start_soon(hang_up)
        with anyio.fail_after(2):
            try:
                outcome: object = await x.read(10)
            except OSError as exc:  # Linux: EIO once the slave side is gone
                outcome = exc.errno
        assert outcome in (b"", errno.EIO)
    await x.aclose()


async def test_udp_error_wakes_a_parked_reader(backend: str) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.connect(("127.0.0.1", port))
        x = Async(s)
        async with anyio.create_task_group() as tg:

            async def send_soon() -> None:
                await anyio.sleep(0.02)
                s.send(b"x")

            tg.start_soon(send_soon)
            with pytest.raises(ConnectionRefusedError):
                with anyio.fail_after(2):
                    await x.recv(10)
        x.into_inner()


@pytest.mark.parametrize("kind", ["eventfd", "timerfd", "signalfd", "inotify", "epoll"])
async def test_counter_kinds_wake_and_drain(backend: str, kind: str) -> None:
    with _kind(kind) as opened:
        x = Async(opened.fd)
        for _ in range(3):
            async with anyio.create_task_group() as tg:

                async def poke_later() -> None:
                    await anyio.sleep(0.01)
                    opened.poke()

                tg.start_soon(poke_later)
                with anyio.fail_after(2):
                    await x.readable()
            opened.drain()
        x.into_inner()


# -- BaseException from an op ----------------------------------------------------


class Boom(BaseException):
    pass


@pytest.mark.parametrize("after_wait", [False, True])
async def test_base_exception_from_an_op(backend: str, after_wait: bool) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        calls = 0

        def op(s: socket.socket) -> bytes:
            nonlocal calls
            calls += 1
            if after_wait and calls == 1:
                raise BlockingIOError
            raise Boom

        async with anyio.create_task_group() as tg:

            async def send_soon() -> None:
                await anyio.sleep(0.01)
                b.send(b"1")

            tg.start_soon(send_soon)
            with pytest.raises(Boom):
                await x.read_with(op)
        assert calls == (2 if after_wait else 1)
        with anyio.fail_after(2):
            assert await x.recv(1) == b"1"  # still usable, nothing registered
        x.into_inner()


# -- use from a second thread or loop --------------------------------------------


async def test_second_thread_or_loop(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        async with anyio.create_task_group() as tg:
            tg.start_soon(x.readable)
            await anyio.wait_all_tasks_blocked()  # the tasks wait now

            def other_thread() -> list[str]:
                seen = []

                async def use() -> None:
                    await x.readable()

                for run in (lambda: asyncio.run(use()),):
                    try:
                        run()
                    except RuntimeError as exc:
                        seen.append(str(exc))
                try:
                    x.close()
                except RuntimeError as exc:
                    seen.append(str(exc))
                return seen

            seen = await anyio.to_thread.run_sync(other_thread)
            assert len(seen) == 2
            assert "another event loop" in seen[0]
            assert "thread" in seen[1]
            assert not x.closed
            b.send(b"1")
        assert await x.recv(1) == b"1"
        x.into_inner()


# -- the loop stopped or closed while a task waits -------------------------------


LOOPS = ("asyncio", "asyncio-debug", "uvloop")


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    loop = asyncio.new_event_loop()
    loop.set_debug(name == "asyncio-debug")
    return loop


@pytest.mark.parametrize("loop_name", LOOPS)
def test_loop_stopped_while_a_task_waits(loop_name: str) -> None:
    loop = _new_loop(loop_name)
    try:
        with socketpair() as (a, _b):
            x = Async(a)

            async def read() -> bytes:
                return await x.recv(1)

            task = loop.create_task(read())
            loop.run_until_complete(asyncio.sleep(0.02))  # the task waits; the loop stops
            assert not task.done()
            x.close()  # allowed: the loop is not running
            assert a.fileno() == -1
            with pytest.raises(ClosedResourceError):
                loop.run_until_complete(task)
    finally:
        loop.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_loop_closed_while_a_task_waits(loop_name: str) -> None:
    loop = _new_loop(loop_name)
    with socketpair() as (a, _b):
        x = Async(a)

        async def read() -> bytes:
            return await x.recv(1)

        task = loop.create_task(read())
        loop.run_until_complete(asyncio.sleep(0.02))
        task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        x.close()  # nothing left to deregister; closes the socket
        assert a.fileno() == -1
        # the next loop starts clean
        with socketpair() as (c, d):
            y = Async(c)

            async def roundtrip() -> bytes:
                d.send(b"2")
                return await y.recv(1)

            assert asyncio.run(roundtrip()) == b"2"
            y.into_inner()


def test_trio_run_ends_while_a_task_waits() -> None:
    import trio

    with socketpair() as (a, b):
        x = Async(a)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(x.readable)
                await trio.sleep(0.02)
                nursery.cancel_scope.cancel()

        trio.run(main)
        b.send(b"3")

        async def again() -> bytes:
            return await x.recv(1)

        assert trio.run(again) == b"3"  # a new run: no stale state
        x.close()


def test_the_stall_guard_catches_a_blocking_callback() -> None:
    from .conftest import STALL_LIMIT, run_async

    async def stall() -> None:
        def spin() -> None:
            end = time.thread_time() + STALL_LIMIT * 2
            while time.thread_time() < end:
                pass

        asyncio.get_running_loop().call_soon(spin)
        await asyncio.sleep(0.01)

    with pytest.raises(AssertionError, match="the loop stalled"):
        run_async("asyncio-debug", stall)
