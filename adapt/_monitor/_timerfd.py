"""Linux calls through ctypes: a CLOCK_MONOTONIC timerfd (Python 3.13 has
``os.timerfd_create``), and a thread's own file-descriptor table."""

from __future__ import annotations

import ctypes
import os
import sys
import time

__all__ = ["TimerFD", "private_fd_table"]

_libc = ctypes.CDLL(None, use_errno=True)
_TFD_TIMER_ABSTIME = 1
_CLONE_FILES = 0x400
_LAST_FD = 0xFFFFFFFF


class _ITimerSpec(ctypes.Structure):
    _fields_ = [(n, ctypes.c_long) for n in ("i_sec", "i_nsec", "v_sec", "v_nsec")]


class TimerFD:
    """One timerfd; ``blocking`` decides whether :meth:`read` waits."""

    def __init__(self, *, blocking: bool) -> None:
        flags = os.O_CLOEXEC | (0 if blocking else os.O_NONBLOCK)
        fd = _libc.timerfd_create(time.CLOCK_MONOTONIC, flags)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_create: {os.strerror(errno)}")
        self.fd: int = fd
        # one spec, reused: set() runs on the loop at every heartbeat
        self._spec = _ITimerSpec()
        self._ref = ctypes.byref(self._spec)
        self._settime = _libc.timerfd_settime

    def set(self, seconds: float, interval: float = 0.0, *, absolute: bool = False) -> None:
        """Expire ``seconds`` from now (or at monotonic time ``seconds``),
        then every ``interval`` (0: once)."""
        spec = self._spec
        spec.i_sec, spec.i_nsec = divmod(round(interval * 1e9), 10**9)
        spec.v_sec, spec.v_nsec = divmod(max(1, round(seconds * 1e9)), 10**9)
        if self._settime(self.fd, _TFD_TIMER_ABSTIME if absolute else 0, self._ref, None) < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_settime: {os.strerror(errno)}")

    def read(self) -> int:
        """Expirations since the last read (0 if none, non-blocking)."""
        try:
            return int.from_bytes(os.read(self.fd, 8), sys.byteorder)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def private_fd_table(keep: int) -> bool:
    """Give the calling thread a file-descriptor table of its own, holding
    only ``keep``; False (nothing changed) where the system refuses.

    While two threads share the process's table, the kernel takes and
    drops a reference on the file in every system call on an fd (it skips
    that for a table with one user): a thread that only sleeps made adapt's
    uvloop ping-pong 2.7% slower, with its own table 0.2% (median of 25
    paired rounds).  The copy ``unshare`` makes holds every file the
    process had open, which a close in the program would then no longer
    end, so all but ``keep`` are closed at once.  (A file the program closes
    in between ends when this copy is closed, microseconds later.  The GIL
    is released meanwhile: a close may wait, for an NFS write-back say.)
    """
    try:
        unshare, close_range = _libc.unshare, _libc.close_range
    except AttributeError:
        return False
    close_range.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_int]
    if unshare(_CLONE_FILES) != 0:
        return False  # a seccomp filter, say: the table stays shared
    ranges = ((0, keep - 1), (keep + 1, _LAST_FD)) if keep > 0 else ((1, _LAST_FD),)
    for first, last in ranges:
        if close_range(first, last, 0) != 0:
            # an old kernel: close what /proc lists (the listing's own fd
            # is gone by the time the loop runs)
            for name in os.listdir("/proc/thread-self/fd"):
                fd = int(name)
                if fd != keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            break
    return True
