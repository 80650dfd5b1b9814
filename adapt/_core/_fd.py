"""Low-level helpers of the ``Async`` core: validating an fd, setting and
restoring its blocking mode, and running one attempt of an op."""

from __future__ import annotations

import fcntl
import io
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any, cast

from .._errors import READ, WRITE, WouldBlock

__all__ = [
    "DIRECTION_NAMES",
    "never_error",
    "never_ready",
    "readiness",
    "FREE",
    "OTHER",
    "OURS",
    "RETRY",
    "Blocked",
    "attempt",
    "fd_of",
    "fd_ident",
    "fd_owner",
    "refuse_buffered",
    "make_nonblocking",
    "restore_mode",
    "unknown_mode_error",
]


def ssl_direction(exc: OSError) -> int | None:
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        if isinstance(exc, ssl.SSLWantReadError):
            return READ
        if isinstance(exc, ssl.SSLWantWriteError):
            return WRITE
    return None


class Blocked:
    """What :func:`attempt` returns instead of raising "would block"."""

    __slots__ = ("direction",)

    def __init__(self, direction: int) -> None:
        self.direction = direction


BLOCKED = (Blocked(READ), Blocked(WRITE))
RETRY = Blocked(-1)


def attempt(
    op: Callable[[Any], Any],
    arg: object,
    direction: int,
    would_block: tuple[type[BaseException], ...],
) -> Any:
    """Run ``op(arg)`` once; a would-block signal comes back as a ``Blocked``.

    Catching here rather than in the ``_io`` coroutine matters: a traceback
    that passes through a coroutine's frame makes CPython allocate a frame
    object that lives as long as the coroutine -- for every parked task.
    """
    try:
        return op(arg)
    except BlockingIOError:
        return BLOCKED[direction]
    except InterruptedError:
        return RETRY
    except WouldBlock as exc:
        return BLOCKED[direction if exc.direction is None else exc.direction]
    except OSError as exc:
        if would_block and isinstance(exc, would_block):
            return BLOCKED[direction]
        ssl_want = ssl_direction(exc)
        if ssl_want is None:
            raise
        return BLOCKED[ssl_want]
    except would_block:
        return BLOCKED[direction]


#: the largest fd number (a C int)
_FD_MAX = 2**31 - 1


def fd_of(obj: object) -> int:
    """Validate ``obj`` and return its fd, changing nothing."""
    if isinstance(obj, bool):
        raise TypeError("Async() takes a fileno()-bearing object or an int fd, not a bool")
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if not callable(fileno):
            raise TypeError(
                f"Async() takes a fileno()-bearing object or an int fd; "
                f"{type(obj).__name__!r} has no fileno() method"
            )
        fd = fileno()
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"{type(obj).__name__}.fileno() returned {fd!r}, not an int")
    if fd < 0:
        raise ValueError(f"fd must be >= 0, got {fd} (is the object closed?)")
    if fd > _FD_MAX:
        raise ValueError(f"fd {fd} is out of range (an fd is a C int)")
    return fd


def fd_ident(fd: int) -> tuple[int, int]:
    """``(st_dev, st_ino)`` of ``fd``; rejects what epoll cannot watch."""
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"fd {fd} is not open: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        kind = "a regular file" if stat.S_ISREG(st.st_mode) else "a directory"
        raise ValueError(
            f"fd {fd} is {kind}: epoll cannot watch it (it never blocks, so there is "
            f"no readiness to wait for); use adapt.reader() / adapt.writer() to do its "
            f"I/O in a worker thread"
        )
    return (st.st_dev, st.st_ino)


def refuse_buffered(obj: object) -> None:
    """Refuse a buffered or text file object, naming the fixes."""
    if isinstance(obj, (io.BufferedIOBase, io.TextIOBase)):
        kind = type(obj).__name__
        raise TypeError(
            f"Async() cannot wrap a {kind}: its buffer hides data from readiness "
            f"(a non-blocking read1() returns b'' before data arrives, like end of "
            f"file); wrap its unbuffered .raw (Async(f.raw)), open it unbuffered "
            f"(open(..., buffering=0), Popen(..., bufsize=0)), or read it with "
            f"adapt.reader() / write it with adapt.writer()"
        )


#: who has a wrapper's fd number (:func:`fd_owner`)
OURS, FREE, OTHER = 0, 1, 2


def fd_owner(obj: object, fd: int, ident: tuple[int, int]) -> int:
    """Who has the number ``fd`` that ``obj`` was wrapped with: ``obj``
    (``OURS``), nobody (``FREE``: closed behind adapt's back) or another file
    (``OTHER``)."""
    closed = False
    if not isinstance(obj, int):
        try:
            closed = cast(Any, obj).fileno() != fd
        except (OSError, ValueError):
            closed = True
    try:
        now = fd_ident(fd)
    except OSError:
        return FREE
    except ValueError:
        return OTHER  # a regular file or directory took the number
    if not isinstance(obj, int):
        # the object owns its number, whatever file it names by now (``dup2``
        # onto it); once the object is closed, the number is another's
        return OTHER if closed else OURS
    # (an anonymous inode -- eventfd, pty master... -- looks the same whichever
    # file it is: an int fd closed behind adapt's back and reused by the same
    # kind is taken for ours)
    return OURS if now == ident else OTHER


def unknown_mode_error(obj: object) -> TypeError:
    """``Async(obj)`` of a kind adapt does not know, with no ``nonblocking=``."""
    kind = type(obj).__qualname__
    return TypeError(
        f"Async() does not know whether a {kind!r} object may have its fd made "
        f"non-blocking (its library may rely on blocking mode, or set the mode "
        f"itself): choose with Async(obj, nonblocking=False) -- leave the fd as it "
        f"is, for ops that never block by themselves (timeout=0, poll(), a "
        f"readiness check first) -- or Async(obj, nonblocking=True) -- set "
        f"O_NONBLOCK, restored by into_inner()/close(), for ops that then raise "
        f"BlockingIOError.  adapt chooses by itself only for sockets, io.FileIO, "
        f"int fds, multiprocessing connections and registered shim classes"
    )


#: bits of the saved mode returned by :func:`make_nonblocking`
WAS_BLOCKING, SET_TIMEOUT = 1, 2


def make_nonblocking(obj: object, fd: int, nonblocking: bool) -> tuple[int, float | None]:
    """Set non-blocking mode (if asked); return the saved mode, for :func:`restore_mode`.

    The saved mode is a few bits and a socket's timeout, not a closure: one
    is kept per wrapped object, and a closure with its cells costs ~500 bytes.
    """
    mode = WAS_BLOCKING if os.get_blocking(fd) else 0
    timeout = None
    # only a real socket: an object that merely has settimeout() (a paramiko
    # Channel) means something else by it
    if isinstance(obj, socket.socket):
        sock: Any = obj
        was = sock.gettimeout()
        if nonblocking and was != 0.0:
            sock.settimeout(0.0)  # a socket's timeout overrides O_NONBLOCK
            mode |= SET_TIMEOUT
            timeout = was
    elif nonblocking and mode & WAS_BLOCKING:
        os.set_blocking(fd, False)
    return mode, timeout


def restore_mode(obj: object, fd: int, mode: int, timeout: float | None) -> None:
    """Undo :func:`make_nonblocking`.

    This also undoes an O_NONBLOCK that the event loop set behind our back
    (libuv, under uvloop, sets it on every fd it polls), so ``into_inner()``
    hands back the object in the mode it came in.
    """
    if mode & SET_TIMEOUT:
        cast(Any, obj).settimeout(timeout)  # also restores O_NONBLOCK to match
    was_blocking = bool(mode & WAS_BLOCKING)
    if os.get_blocking(fd) != was_blocking:
        os.set_blocking(fd, was_blocking)


#: the names of the directions (``wait=``), and the direction each names
DIRECTION_NAMES = ("readable", "writable")
READINESS: dict[object, int] = {"readable": READ, "writable": WRITE}


def readiness(wait: object) -> int:
    """The direction a ``wait=`` argument names."""
    direction = READINESS.get(wait)
    if direction is None:
        raise ValueError(f"wait= takes 'readable' or 'writable', got {wait!r}")
    return direction


def never_ready(fd: int) -> int:
    """The direction ``fd`` can never be ready in, by its access mode, or -1.

    A pipe's read end is never writable (epoll never reports it), a write
    end never readable: a wait for that would hang forever.
    """
    try:
        access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return -1  # closed: the wait reports it
    if access == os.O_RDONLY:
        return WRITE
    if access == os.O_WRONLY:
        return READ
    return -1


def never_error(fd: int, direction: int) -> ValueError:
    """The error for a wait in a direction ``fd`` can never be ready in."""
    mode, name = ("read-only", "writable") if direction == WRITE else ("write-only", "readable")
    other = DIRECTION_NAMES[1 - direction]
    return ValueError(
        f"fd {fd} is open {mode}: it never becomes {name}, so a wait for that would "
        f"never end; if the fd only signals that the library may make progress (a "
        f"pipe's read end, like paramiko's Channel), wait for it to be {other} "
        f"(write_with/read_with(op, wait={other!r})), or wrap the fd that carries "
        f"the data"
    )
