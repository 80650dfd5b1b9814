"""Every kind of pollable fd adapt is asked to wait on, opened for real.

Each :class:`Kind` opens one readable fd (plus whatever keeps it alive),
makes it readable, drains it, and closes it.  eventfd, timerfd, signalfd,
inotify and epoll fds (and pty masters) are anonymous inodes: they all share
one ``(st_dev, st_ino)``, so a reused fd number of such a kind looks like
the old file -- the case the reliability tests are about.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import signal
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC

#: the signal the signalfd kind uses; blocked in the main thread while open
SIGNAL = signal.SIGUSR2


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


@dataclass
class Opened:
    """One open fd of a kind: ``fd`` is what gets wrapped."""

    fd: int
    poke: Callable[[], None]
    drain: Callable[[], None]
    close_extra: Callable[[], None] = lambda: None
    #: the object to wrap (the int fd unless the kind has a richer one)
    obj: Any = None
    keep: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Close the fd and whatever keeps it alive (idempotent)."""
        try:
            if self.obj is not None and hasattr(self.obj, "close"):
                self.obj.close()
            else:
                os.close(self.fd)
        except OSError:
            pass
        self.close_extra()
        self.close_extra = lambda: None

    def close_fd_only(self) -> None:
        """Close the fd number behind the wrapper's back (os.close)."""
        os.close(self.fd)


def _read_quietly(fd: int, n: int = 65536) -> None:
    try:
        while os.read(fd, n):
            pass
    except BlockingIOError:
        pass


def open_socket() -> Opened:
    a, b = socket.socketpair()
    a.setblocking(False)

    def close_extra() -> None:
        b.close()

    def drain() -> None:
        try:
            while a.recv(65536):
                pass
        except BlockingIOError:
            pass

    return Opened(a.fileno(), lambda: b.send(b"x"), drain, close_extra, obj=a)


def open_pipe() -> Opened:
    r, w = os.pipe()
    os.set_blocking(r, False)
    return Opened(
        r, lambda: os.write(w, b"x") and None, lambda: _read_quietly(r), lambda: os.close(w)
    )


def open_pty() -> Opened:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    import tty

    tty.setraw(slave)
    return Opened(
        master,
        lambda: os.write(slave, b"x") and None,
        lambda: _read_quietly(master),
        lambda: os.close(slave),
    )


def open_eventfd() -> Opened:
    fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    return Opened(fd, lambda: os.eventfd_write(fd, 1), lambda: _read_quietly(fd, 8))


def open_timerfd() -> Opened:
    clock_monotonic = 1
    fd = _check(_libc.timerfd_create(clock_monotonic, _NONBLOCK_CLOEXEC))

    def poke() -> None:
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(0, 1))  # fire once, now
        _check(_libc.timerfd_settime(fd, 0, ctypes.byref(spec), None))

    return Opened(fd, poke, lambda: _read_quietly(fd, 8))


def open_signalfd() -> Opened:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the signalfd kind is opened in the main thread")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, [SIGNAL])
    mask = ctypes.create_string_buffer(128)  # sigset_t
    word, bit = divmod(int(SIGNAL) - 1, 64)
    struct.pack_into("Q", mask, word * 8, 1 << bit)
    fd = _check(_libc.signalfd(-1, mask, _NONBLOCK_CLOEXEC))
    main = threading.main_thread().ident
    assert main is not None

    def close_extra() -> None:
        # consume a signal still pending, or unblocking it would kill us
        while signal.sigtimedwait([SIGNAL], 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    return Opened(
        fd,
        lambda: signal.pthread_kill(main, SIGNAL),
        lambda: _read_quietly(fd, 128),
        close_extra,
    )


def open_inotify() -> Opened:
    fd = _check(_libc.inotify_init1(_NONBLOCK_CLOEXEC))
    tmp = tempfile.TemporaryDirectory()
    in_create = 0x100
    _check(_libc.inotify_add_watch(fd, tmp.name.encode(), in_create))
    counter = [0]

    def poke() -> None:
        counter[0] += 1
        with open(os.path.join(tmp.name, f"f{counter[0]}"), "wb"):
            pass

    return Opened(fd, poke, lambda: _read_quietly(fd), tmp.cleanup)


def open_epoll() -> Opened:
    ep = select.epoll()  # first: it gets the lowest free number
    inner = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    ep.register(inner, select.EPOLLIN)

    def close_extra() -> None:
        os.close(inner)

    return Opened(
        ep.fileno(),
        lambda: os.eventfd_write(inner, 1),
        lambda: _read_quietly(inner, 8),
        close_extra,
        obj=ep,
    )


KINDS: dict[str, Callable[[], Opened]] = {
    "socket": open_socket,
    "pipe": open_pipe,
    "pty": open_pty,
    "eventfd": open_eventfd,
    "timerfd": open_timerfd,
    "signalfd": open_signalfd,
    "inotify": open_inotify,
    "epoll": open_epoll,
}

#: the kinds whose fds all share one inode (a reused number looks the same)
ANONYMOUS = ("pty", "eventfd", "timerfd", "signalfd", "inotify", "epoll")


def open_on(kind: str, fd: int, attempts: int = 20) -> Opened:
    """Open a new fd of ``kind`` on the number ``fd`` (which must be free)."""
    held: list[Opened] = []
    try:
        for _ in range(attempts):
            opened = KINDS[kind]()
            if opened.fd == fd:
                return opened
            held.append(opened)
        raise AssertionError(f"could not get fd {fd} back for a {kind}")
    finally:
        for other in held:
            other.close()
