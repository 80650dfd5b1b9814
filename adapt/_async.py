"""The readiness adapter: ``Async(obj)``.

Theory of operation
-------------------
``read_with(op)`` runs ``op(obj)`` in the awaiting task.  If the op says it
would block (``BlockingIOError``, :class:`WouldBlock`, ``SSLWant*Error`` or
an exception declared with ``would_block=``), the task waits until the loop
reports the fd ready in the direction asked for, then runs the op again.
Everything between attempts is a wait, and nothing else:

* **Try first, wait second.**  Data a library already buffered (SSL
  ``pending()``, a parser's leftovers) is returned without touching the loop.
* **Cancellation loses nothing.**  The op never runs in a loop callback, so a
  wait that is cancelled has consumed nothing; an op that succeeded returns
  its result -- there is no await between the two.  (``loop.sock_recv`` runs
  ``recv`` inside the reader callback and drops the bytes if the waiting task
  was cancelled in between.)
* **Wake-ups may be spurious.**  A wake-up only means "try again": the op is
  the judge.  That lets the backends stay simple -- share registrations,
  wake every waiter, let a woken follower become the leader.

The wrapper binds lazily to the first loop that waits on it, through the
backend's :class:`~adapt._backends.FdWatch` for that fd (shared by all
wrappers of the fd on that loop).  A wrapper whose loop has ended rebinds to
the next one; using it from a second *live* loop is an error.

Close order: mark closed, wake every waiter with ClosedResourceError (the
watch does that), deregister, restore the blocking mode, close the object.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._backends import FdWatch, current_backend
from ._errors import READ, WRITE, ClosedResourceError, WouldBlock

if TYPE_CHECKING:
    from ._shims import AsyncFD, AsyncSocket

__all__ = ["Async"]

T = TypeVar("T")
R = TypeVar("R")
_A = TypeVar("_A", bound="Async[Any]")

ExcTypes = type[BaseException] | tuple[type[BaseException], ...]

#: shim classes by the type they wrap, filled by ``Async.__init_subclass__``
_SHIMS: dict[type, type[Async[Any]]] = {}


def _ssl_direction(exc: OSError) -> int | None:
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        if isinstance(exc, ssl.SSLWantReadError):
            return READ
        if isinstance(exc, ssl.SSLWantWriteError):
            return WRITE
    return None


def _fd_of(obj: object) -> int:
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
    return fd


def _ident(fd: int) -> tuple[int, int]:
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


class Async(Generic[T]):
    """Make a ``fileno()``-bearing object awaitable, without threads.

    ``op`` callbacks receive the wrapped object and signal "would block" by
    raising ``BlockingIOError``, :class:`~adapt.WouldBlock`,
    :class:`~adapt.WantRead`, :class:`~adapt.WantWrite`, an
    ``ssl.SSLWant*Error``, or one of the exceptions named in ``would_block``.

    Sync and async twins::

        data = sock.recv(1024)                                # blocks the thread
        data = await Async(sock).read_with(lambda s: s.recv(1024))
        data = await Async(sock).recv(1024)                   # the generated shim

    Args:
        obj: a socket, pipe, pty, inotify/eventfd object... or an int fd.
        nonblocking: put the fd in non-blocking mode (restored by
            :meth:`into_inner` and :meth:`close`).  Pass False only when every
            op is non-blocking by itself (e.g. reads with ``timeout=0``).
        would_block: the library's own "would block" exception type(s), such
            as ``zmq.Again`` or ``TimeoutError``.
    """

    __slots__ = ("_obj", "_fd", "_ident", "_closed", "_watch", "_would_block", "_restore", "__weakref__")

    _obj: T
    _fd: int
    _ident: tuple[int, int]
    _closed: bool
    _watch: FdWatch | None
    _would_block: tuple[type[BaseException], ...]
    _restore: Callable[[], None] | None

    # mypy and pyright pick the shim class from these overloads, so
    # ``await Async(sock).recv(10)`` is typed ``bytes``.
    @overload
    def __new__(
        cls, obj: socket.socket, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncSocket: ...

    @overload
    def __new__(
        cls, obj: int, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncFD: ...

    @overload
    def __new__(
        cls, obj: T, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> Async[T]: ...

    def __new__(cls, obj: Any, *, nonblocking: bool = True, would_block: ExcTypes = ()) -> Any:
        if cls is Async:
            for klass in type(obj).__mro__:
                shim = _SHIMS.get(klass)
                if shim is not None:
                    cls = shim
                    break
        return cls._create(obj, nonblocking, would_block)

    def __init_subclass__(cls, wraps: type | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if wraps is not None:
            _SHIMS[wraps] = cls

    @classmethod
    def _create(cls: type[_A], obj: object, nonblocking: bool, would_block: ExcTypes) -> _A:
        if isinstance(obj, Async):
            raise TypeError("the object is already wrapped; use it, or its get_ref()")
        fd = _fd_of(obj)
        ident = _ident(fd)
        if not isinstance(would_block, tuple):
            would_block = (would_block,)
        for exc_type in would_block:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(f"would_block takes exception types, got {exc_type!r}")
        self = object.__new__(cls)
        self._obj = cast(Any, obj)
        self._fd = fd
        self._ident = ident
        self._closed = False
        self._watch = None
        self._would_block = would_block
        self._restore = _make_nonblocking(obj, fd) if nonblocking else None
        return self

    # -- the two primitives ------------------------------------------------

    def read_with(self, op: Callable[[T], R]) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until readable and retry.

        ::

            n = sock.recv_into(buf)                                   # sync
            n = await a.read_with(lambda s: s.recv_into(buf))         # async
        """
        return self._io(op, READ)

    def write_with(self, op: Callable[[T], R]) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until writable and retry.

        ::

            n = os.write(fd, data)                                    # sync
            n = await Async(fd).write_with(lambda fd: os.write(fd, data))
        """
        return self._io(op, WRITE)

    async def _io(self, op: Callable[[T], R], direction: int) -> R:
        obj = self._obj
        would_block = self._would_block
        while True:
            if self._closed:
                raise ClosedResourceError("the object is closed")
            try:
                return op(obj)
            except BlockingIOError:
                want = direction
            except InterruptedError:
                continue
            except WouldBlock as exc:
                want = direction if exc.direction is None else exc.direction
            except OSError as exc:
                if would_block and isinstance(exc, would_block):
                    want = direction
                else:
                    ssl_want = _ssl_direction(exc)
                    if ssl_want is None:
                        raise
                    want = ssl_want
            except would_block:
                want = direction
            await self._wait(want)

    async def _wait(self, direction: int) -> None:
        watch = self._watch
        if watch is None or not watch.current():
            watch = self._bind()
        try:
            waiter = watch.arm(direction)
        except ClosedResourceError:
            if self._closed:
                raise
            return  # a sibling wrapper closed the shared watch: retry, rebinding
        try:
            await waiter
        except ClosedResourceError:
            if self._closed:
                raise
        except BaseException:
            watch.disarm(direction, waiter)
            raise

    def _bind(self) -> FdWatch:
        if self._closed:
            raise ClosedResourceError("the object is closed")
        old = self._watch
        if old is not None:
            if old.alive():
                raise RuntimeError(
                    "this Async object is in use by another event loop or thread; "
                    "wrap the object once per loop"
                )
            if old.closed:
                # closed by a sibling wrapper, or found stale: is the fd still ours?
                try:
                    same = _ident(self._fd) == self._ident
                except (OSError, ValueError):
                    same = False
                if not same:
                    self._closed = True
                    raise ClosedResourceError(
                        f"fd {self._fd} was closed behind adapt's back (and maybe reused)"
                    )
            else:
                old.users -= 1
            self._watch = None
        watch = current_backend().watch(self._fd, self._ident)
        watch.users += 1
        self._watch = watch
        return watch

    async def readable(self) -> None:
        """Wait until the object is (probably) readable.

        ::

            select.select([sock], [], [])        # sync
            await Async(sock).readable()         # async
        """
        await self._wait(READ)

    async def writable(self) -> None:
        """Wait until the object is (probably) writable.

        ::

            select.select([], [sock], [])        # sync
            await Async(sock).writable()         # async
        """
        await self._wait(WRITE)

    # -- accessors ---------------------------------------------------------

    def get_ref(self) -> T:
        """The wrapped object, unchanged: ``Async(sock).get_ref() is sock``."""
        return self._obj

    def fileno(self) -> int:
        """The wrapped fd: ``Async(sock).fileno() == sock.fileno()``."""
        return self._fd

    @property
    def closed(self) -> bool:
        """True after :meth:`close`, :meth:`aclose` or :meth:`into_inner`."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state} {self._obj!r}>"

    # -- ending ------------------------------------------------------------

    def _detach(self) -> None:
        """Mark closed, wake waiters with ClosedResourceError, deregister, restore mode."""
        self._closed = True
        watch, self._watch = self._watch, None
        if watch is not None and not watch.closed:
            if watch.current():
                watch.close()
            elif watch.alive():
                raise RuntimeError(
                    "close this Async object from the thread of the event loop using it"
                )
        restore, self._restore = self._restore, None
        if restore is not None:
            try:
                restore()
            except (OSError, ValueError):
                pass  # the object was closed behind our back

    def into_inner(self) -> T:
        """Stop adapting: deregister, restore the blocking mode, return the object.

        Waiting tasks get ClosedResourceError; the object is not closed::

            sock = Async(sock).into_inner()     # a plain blocking socket again
        """
        if not self._closed:
            self._detach()
        return self._obj

    def close(self) -> None:
        """Wake waiters with ClosedResourceError, deregister, close the object.

        Idempotent.  Call it from the loop's thread (or with no loop running).
        """
        if self._closed:
            return
        self._detach()
        obj = self._obj
        if isinstance(obj, int):
            os.close(obj)
        else:
            cast(Any, obj).close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`; always a checkpoint::

            sock.close()                # sync
            await Async(sock).aclose()  # async
        """
        self.close()
        await current_backend().checkpoint()

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A dropped wrapper (``await Async(sock).recv(10)`` makes one per call)
        # must not leave a registration behind once its last sibling is gone.
        try:
            watch = self._watch
        except AttributeError:
            return  # __new__ failed before setting up
        if watch is not None and not watch.closed:
            watch.users -= 1
            if watch.users <= 0:
                if watch.current():
                    watch.close()
                else:
                    watch.close_threadsafe()


def _make_nonblocking(obj: object, fd: int) -> Callable[[], None] | None:
    """Set non-blocking mode; return how to undo it (None: nothing to undo)."""
    gettimeout = getattr(obj, "gettimeout", None)
    settimeout = getattr(obj, "settimeout", None)
    if callable(gettimeout) and callable(settimeout) and hasattr(obj, "setblocking"):
        timeout = gettimeout()  # a socket: its timeout overrides O_NONBLOCK
        if timeout == 0.0:
            return None
        settimeout(0.0)
        return lambda: settimeout(timeout)
    if not os.get_blocking(fd):
        return None
    os.set_blocking(fd, False)
    return lambda: os.set_blocking(fd, True)
