"""The linuxfd recipe against real eventfds, timerfds and signalfds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import anyio
import pytest
from adapt.recipes import linuxfd
from adapt.recipes import linuxfd as recipe

from adapt import ClosedResourceError, run_sync

from ._child import BACKENDS, run_example


@pytest.mark.parametrize("backend", BACKENDS)
def test_example(backend: str) -> None:
    run_example(recipe, backend)  # a process of its own: signals blocked at start


async def test_eventfd_counter_sums_writes(backend: str) -> None:
    with linuxfd.EventFD(2) as ev:
        ev.write(3)
        ev.write(5)
        assert await ev.read() == 10
        with anyio.move_on_after(0.05) as scope:
            await ev.read()  # counter is 0: waits
        assert scope.cancelled_caught


async def test_eventfd_semaphore_takes_one_at_a_time(backend: str) -> None:
    got = []
    with linuxfd.EventFD(2, semaphore=True) as ev:
        assert await ev.read() == 1
        assert await ev.read() == 1

        async def take() -> None:
            got.append(await ev.read())

        async with anyio.create_task_group() as tg:
            tg.start_soon(take)
            tg.start_soon(take)
            await anyio.sleep(0.02)
            assert got == []  # both wait at 0
            await run_sync(ev.write, 2)  # from a worker thread
        assert got == [1, 1]


async def test_eventfd_write_wait_with_less_room_than_the_value_is_refused(
    backend: str,
) -> None:
    # the fd is writable (room for 1), the write of 5 would block: no
    # readiness says "room for 5", so a wait would spin; refused at once
    with linuxfd.EventFD() as ev:
        ev.write(2**64 - 2 - 3)
        with anyio.fail_after(1):
            with pytest.raises(ValueError, match="room for less than 5"):
                await ev.write_wait(5)
            await ev.write_wait(3)  # fits: done at once
        assert await ev.read() == 2**64 - 2


async def test_eventfd_write_wait_on_a_high_fd_waits(backend: str) -> None:
    # an fd number past select()'s FD_SETSIZE (1024): a full counter still
    # waits for a reader, and the check for room does not fail
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    try:
        with linuxfd.EventFD() as ev:
            assert ev.fileno() >= 1024
            ev.write(2**64 - 2)
            async with anyio.create_task_group() as tg:
                tg.start_soon(ev.write_wait, 5)
                await anyio.sleep(0.02)
                assert await ev.read() == 2**64 - 2
            assert await ev.read() == 5
    finally:
        for fd in spare:
            os.close(fd)


async def test_eventfd_write_wait_waits_for_room(backend: str) -> None:
    with linuxfd.EventFD() as ev:
        # full: not writable until a read
        ev.write(2**64 - 2)
        with pytest.raises(BlockingIOError):
            ev.write(5)  # would pass the maximum
        async with anyio.create_task_group() as tg:
            tg.start_soon(ev.write_wait, 5)
            await anyio.sleep(0.02)
            assert await ev.read() == 2**64 - 2  # makes room
        assert await ev.read() == 5


async def test_close_wakes_a_waiter(backend: str) -> None:
    ev = linuxfd.EventFD()
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            with pytest.raises(ClosedResourceError):
                await ev.read()

        tg.start_soon(wait)
        await anyio.sleep(0.02)
        ev.close()


async def test_timerfd_one_shot(backend: str) -> None:
    with linuxfd.TimerFD() as timer:
        start = time.monotonic()
        timer.set(0.05)
        assert await timer.wait() == 1
        assert time.monotonic() - start >= 0.049
        with anyio.move_on_after(0.1) as scope:
            await timer.wait()  # one-shot: never again
        assert scope.cancelled_caught


async def test_timerfd_periodic_counts_missed_expirations_and_disarms(backend: str) -> None:
    with linuxfd.TimerFD() as timer:
        timer.set(0.01, interval=0.01)
        assert await timer.wait() >= 1
        time.sleep(0.055)  # the loop is busy: expirations accumulate
        assert await timer.wait() >= 4
        timer.set(0)  # disarm
        with anyio.move_on_after(0.05) as scope:
            await timer.wait()
        assert scope.cancelled_caught


def test_timerfd_rejects_negative_times() -> None:
    with linuxfd.TimerFD() as timer, pytest.raises(ValueError, match=">= 0"):
        timer.set(-1)


def test_signalfd_refuses_while_a_thread_does_not_block_the_signal() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="unblocked worker")
    thread.start()
    try:
        with pytest.raises(RuntimeError, match=r"unblocked worker.*block_signals"):
            linuxfd.SignalFD(10)  # SIGUSR1, which no thread of this process blocks
    finally:
        release.set()
        thread.join()
    with pytest.raises(ValueError, match="at least one signal"):
        linuxfd.SignalFD()


# A fresh process: signals blocked at its start, before adapt's worker
# threads exist; workers started before and after the signalfd inherit the
# block.  A signal sent by another process and one sent from a worker thread
# both arrive through the signalfd, on each loop.
SIGNAL_CHILD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, threading
    import anyio
    from adapt import run_sync
    from adapt.recipes import linuxfd

    linuxfd.block_signals(signal.SIGUSR1, signal.SIGUSR2)

    async def main():
        await run_sync(threading.get_ident)          # an adapt worker exists now
        with linuxfd.SignalFD(signal.SIGUSR1, signal.SIGUSR2) as sigs:
            assert linuxfd.threads_not_blocking(signal.SIGUSR1, signal.SIGUSR2) == []
            kill = subprocess.Popen(["kill", "-USR2", str(os.getpid())])
            assert await sigs.read() == (signal.SIGUSR2, kill.pid)
            kill.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_sync, os.kill, os.getpid(), signal.SIGUSR1)
                tg.start_soon(run_sync, os.kill, os.getpid(), signal.SIGUSR1)
                # a signal pending twice is delivered once
                assert await sigs.read() == (signal.SIGUSR1, os.getpid())
            workers = [t for t in threading.enumerate() if t.name.startswith("adapt-worker-")]
            assert workers
            assert linuxfd.threads_not_blocking(signal.SIGUSR1, signal.SIGUSR2) == []
        print("signals ok", flush=True)

    b = sys.argv[1]
    anyio.run(main, backend="trio" if b == "trio" else "asyncio",
              backend_options={} if b == "trio" else {"use_uvloop": b == "uvloop"})
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signalfd_in_a_process_that_blocks_at_start(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_CHILD, backend],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "signals ok"


async def test_timerfd_a_tiny_positive_delay_expires(backend: str) -> None:
    # "Expire after delay seconds (> 0)": a delay under half a nanosecond
    # rounds to 0, which disarms the timer, and the wait never ends (a
    # remaining time computed as deadline - now can be that small)
    with linuxfd.TimerFD() as timer:
        timer.set(1e-10)
        with anyio.fail_after(2):
            assert await timer.wait() == 1
