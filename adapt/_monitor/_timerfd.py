"""A CLOCK_MONOTONIC timerfd through ctypes (Python 3.13 has ``os.timerfd_create``)."""

from __future__ import annotations

import ctypes
import os
import sys
import time

__all__ = ["TimerFD"]

_libc = ctypes.CDLL(None, use_errno=True)
_TFD_TIMER_ABSTIME = 1


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
