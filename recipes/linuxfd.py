"""Linux event fds: eventfd, timerfd and signalfd as awaitables.

Requires: standard library (``os.eventfd``; timerfd and signalfd through ctypes).

Platforms: Linux.

Adapts: eventfd counters (:class:`EventFD`, counter or semaphore mode),
timerfd expirations (:class:`TimerFD`, one-shot or periodic) and signalfd
signals (:class:`SignalFD`), opened ``O_NONBLOCK``.  The would-block signal
is the read's ``BlockingIOError`` (EAGAIN: a zero counter, a timer not yet
expired, no pending signal), adapt's own: the reads run in ``read_with``.

Mode: the fds are created non-blocking and wrapped as int fds, a kind
adapt knows (it would set ``O_NONBLOCK`` itself).

Caveats: a signalfd only sees a signal that *every* thread blocks (another
thread takes it otherwise; for SIGUSR1 that ends the process).  Threads
inherit their creator's mask, so call :func:`block_signals` first thing,
before adapt's workers, an executor or trio's thread cache exist;
:class:`SignalFD` refuses, naming the threads, when one does not block it.
Python 3.11 lacks timerfd and signalfd, hence ctypes.

Example::

    import asyncio, os, signal
    from adapt.recipes.linuxfd import EventFD, SignalFD, TimerFD, block_signals

    block_signals(signal.SIGUSR1)               # first thing, before any thread
    async def main():
        with EventFD() as ev:
            ev.write(3)
            assert await ev.read() == 3
        with TimerFD() as timer:
            timer.set(0.01, interval=0.01)      # periodic, every 10 ms
            assert await timer.wait() >= 1
        with SignalFD(signal.SIGUSR1) as sigs:
            os.kill(os.getpid(), signal.SIGUSR1)
            info = await sigs.read()            # (signo, sender's pid)
            assert info == (signal.SIGUSR1, os.getpid())

    asyncio.run(main())
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import struct
import threading
from typing import Self

from adapt import Async

LIBRARY = None
SUMMARY = "Linux event fds: eventfd, timerfd and signalfd as awaitables."

_libc = ctypes.CDLL(None, use_errno=True)
_CLOCK_MONOTONIC, _NONBLOCK, _CLOEXEC = 1, os.O_NONBLOCK, os.O_CLOEXEC


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class _FD:
    """An owned non-blocking fd and its wrapper; ``with`` closes both."""

    def __init__(self, fd: int) -> None:
        self._async = Async(fd)

    def fileno(self) -> int:
        return self._async.fileno()

    def close(self) -> None:
        self._async.close()  # wakes waiters with ClosedResourceError, then os.close

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventFD(_FD):
    """``eventfd(2)``: ``write(n)`` adds to a counter; ``await read()`` takes it
    all, or 1 in ``semaphore`` mode (waiting while it is 0)."""

    def __init__(self, initial: int = 0, *, semaphore: bool = False) -> None:
        flags = os.EFD_CLOEXEC | os.EFD_NONBLOCK | (os.EFD_SEMAPHORE if semaphore else 0)
        super().__init__(os.eventfd(initial, flags))

    async def read(self) -> int:
        return await self._async.read_with(os.eventfd_read)

    def write(self, value: int = 1) -> None:
        """Add ``value``; raises ``BlockingIOError`` if the counter would pass
        2**64 - 2 (use :meth:`write_wait` to wait for a reader instead)."""
        os.eventfd_write(self._async.fileno(), value)

    async def write_wait(self, value: int = 1) -> None:
        """Add ``value``, waiting while the counter is full.  The fd is
        writable while there is room for 1: with room for some but not all
        of ``value`` no readiness comes, so that raises ``ValueError``."""

        def write(fd: int) -> None:
            try:
                os.eventfd_write(fd, value)
                return
            except BlockingIOError:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                if not poller.poll(0):
                    raise  # full: wait for a reader
            try:  # writable, so a reader may have made room just now
                os.eventfd_write(fd, value)
            except BlockingIOError:
                raise ValueError(f"the counter has room for less than {value}") from None

        await self._async.write_with(write)


class _ITimerSpec(ctypes.Structure):
    _fields_ = [(n, ctypes.c_long) for n in ("i_sec", "i_nsec", "v_sec", "v_nsec")]


class TimerFD(_FD):
    """``timerfd_create(2)`` on CLOCK_MONOTONIC: ``set(delay, interval=0)``,
    ``await wait()`` -> expirations since the last wait (>= 1)."""

    def __init__(self) -> None:
        super().__init__(_check(_libc.timerfd_create(_CLOCK_MONOTONIC, _NONBLOCK | _CLOEXEC)))

    def set(self, delay: float, interval: float = 0.0) -> None:
        """Expire after ``delay`` seconds (> 0), then every ``interval`` (0:
        once).  ``set(0)`` disarms."""
        if delay < 0 or interval < 0:
            raise ValueError("delay and interval must be >= 0")
        # a time > 0 that rounds to 0 ns would disarm the timer: 1 ns instead
        delay_ns, interval_ns = (max(round(t * 1e9), 1) if t > 0 else 0 for t in (delay, interval))
        spec = _ITimerSpec(*divmod(interval_ns, 10**9), *divmod(delay_ns, 10**9))
        _check(_libc.timerfd_settime(self.fileno(), 0, ctypes.byref(spec), None))

    async def wait(self) -> int:
        data = await self._async.read_with(lambda fd: os.read(fd, 8))
        return int.from_bytes(data, "little")


def block_signals(*signals: int) -> None:
    """Block ``signals`` in the calling thread and in every thread it starts
    later; call it first thing, before any other thread exists."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)


def threads_not_blocking(*signals: int) -> list[str]:
    """Names (or ids) of this process's threads that do not block ``signals``."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found: list[str] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                blocked = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigBlk:"))
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        if any(not blocked >> (int(s) - 1) & 1 for s in signals):
            found.append(names.get(int(tid), f"thread {tid}"))
    return found


class SignalFD(_FD):
    """``signalfd(2)`` for ``signals``, which every thread must already block
    (:func:`block_signals`); ``await read()`` -> ``(signo, sender_pid)``."""

    def __init__(self, *signals: int) -> None:
        if not signals:
            raise ValueError("SignalFD needs at least one signal")
        loose = threads_not_blocking(*signals)
        if loose:
            raise RuntimeError(
                f"threads {loose} do not block {[signal.Signals(s).name for s in signals]}, so a "
                "signal could go to them instead of the signalfd: call "
                "linuxfd.block_signals(...) at program start, before any thread is started"
            )
        mask = (ctypes.c_ubyte * 128)()  # sigset_t: 1024 bits, all clear
        for signo in signals:
            _check(_libc.sigaddset(ctypes.byref(mask), int(signo)))
        super().__init__(_check(_libc.signalfd(-1, ctypes.byref(mask), _NONBLOCK | _CLOEXEC)))

    async def read(self) -> tuple[int, int]:
        info = await self._async.read_with(lambda fd: os.read(fd, 128))  # signalfd_siginfo
        signo, _errno, _code, pid = struct.unpack_from("<IiiI", info)
        return signo, pid
