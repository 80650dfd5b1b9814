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

Between waits nothing is registered with the loop: a wait registers the fd
with the backend's :class:`~adapt._backends.Reactor` of the running loop and
the wake-up (or cancellation) removes it again, so a wrapper holds no loop
state and a dropped one needs no clean-up.  The wrapper remembers the loop
it last waited on: using it from a second loop while that one runs is an
error; once that loop has stopped, the next one may use it.

Close order: mark closed, wake every waiter of the fd on the loop -- through
any wrapper -- with ClosedResourceError (the reactor does that), restore the
blocking mode, close the object.  All of it only if the object still owns
its fd number: after a close behind adapt's back the number may name another
file by now, which adapt must not touch.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar, cast, overload

from .._backends import Reactor, current_backend, running_reactor
from .._errors import READ, WRITE, ClosedResourceError
from .._resource import AsyncResource
from ._fd import (
    DIRECTION_NAMES,
    FREE,
    OTHER,
    RETRY,
    SET_TIMEOUT,
    WAS_BLOCKING,
    Blocked,
    attempt,
    fd_ident,
    fd_of,
    fd_owner,
    make_nonblocking,
    never_error,
    never_ready,
    readiness,
    refuse_buffered,
    restore_mode,
    unknown_mode_error,
)
from ._predict import DONE, DONE_WAITED, START, initial
from ._registry import blocking_by_default, register, shim_for

if TYPE_CHECKING:
    import io
    import multiprocessing.connection
    import ssl

    from .._shims import AsyncConnection, AsyncFD, AsyncFileIO, AsyncSocket, AsyncSSLSocket

__all__ = ["Async"]

T = TypeVar("T")
R = TypeVar("R")
_A = TypeVar("_A", bound="Async[Any]")
_CS = TypeVar("_CS")
_CR = TypeVar("_CR")

ExcTypes = type[BaseException] | tuple[type[BaseException], ...]
#: the readiness to wait for when an op would block (``wait=``)
Readiness = Literal["readable", "writable"]

#: ``_never`` before the first wait has looked at the fd's access mode
_UNKNOWN = -2
#: fruitless wake-ups in a row, and the time they may take at most, that
#: make a wait a busy loop (see ``Async._spinning``): more than 10,000 a
#: second, where a socket's or pipe's spurious wake-ups come one at a time
_SPIN_WAKEUPS = 1024
_SPIN_SECONDS = 0.1

#: ops in a row that may complete without waiting before the task yields
#: once to the loop anyway, so a busy wrapper cannot starve the other tasks
_BUDGET = 64


def _unknown_kind(klass: type[Async[Any]], obj: object) -> bool:
    """Whether ``obj`` is of a kind whose mode adapt does not change by
    default: no shim class maps to it (sockets, ``io.FileIO``, connections
    and user shims have one) and it is no int fd."""
    return klass is Async and not isinstance(obj, int)


class Async(AsyncResource, Generic[T]):
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
            :meth:`into_inner` and :meth:`close`) -- for a ``socket.socket``
            with ``settimeout(0.0)``, for anything else with ``O_NONBLOCK``.
            Pass False when every op is non-blocking by itself (reads with
            ``timeout=0``, a library that manages its fd's mode).  The
            default changes modes only for kinds adapt knows (sockets
            including ``ssl.SSLSocket``, ``io.FileIO``, int fds, the
            ``multiprocessing`` connections, registered shims: see
            :ref:`mode-policy`); for any other object the choice is the
            caller's, and leaving it out is a ``TypeError`` that names it.
        would_block: the library's own "would block" exception type(s), such
            as ``zmq.Again`` or ``TimeoutError``.
    """

    __slots__ = (
        "_obj",
        "_fd",
        "_ident",
        "_closed",
        "_reactor",
        "_would_block",
        "_mode",
        "_timeout",
        "_budget",
        "_pattern",
        "_follow",
        "_never",
        "__weakref__",
    )

    _obj: T
    _fd: int
    _ident: tuple[int, int]
    _closed: bool
    _reactor: Reactor | None
    _would_block: tuple[type[BaseException], ...]
    _mode: int
    _timeout: float | None
    _budget: int
    _pattern: int
    _follow: bool
    _never: int

    # mypy and pyright pick the shim class from these overloads, so
    # ``await Async(sock).recv(10)`` is typed ``bytes``.  The last one returns
    # Self: ``AsyncSerial(ser)`` of a user's subclass is typed AsyncSerial.
    # An SSLSocket is a socket, but AsyncSSLSocket is not an AsyncSocket (it
    # has no accept/connect/recvfrom...): the checkers flag that overlap.
    @overload
    def __new__(  # type: ignore[overload-overlap]
        cls, obj: ssl.SSLSocket, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncSSLSocket: ...  # pyright: ignore[reportOverlappingOverload]

    @overload
    def __new__(
        cls, obj: socket.socket, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncSocket: ...

    @overload
    def __new__(
        cls, obj: io.FileIO, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncFileIO: ...

    @overload
    def __new__(
        cls,
        obj: multiprocessing.connection.Connection[_CS, _CR],
        *,
        nonblocking: bool = ...,
        would_block: ExcTypes = ...,
    ) -> AsyncConnection[_CS, _CR]: ...

    @overload
    def __new__(
        cls, obj: int, *, nonblocking: bool = ..., would_block: ExcTypes = ...
    ) -> AsyncFD: ...

    @overload
    def __new__(cls, obj: T, *, nonblocking: bool = ..., would_block: ExcTypes = ...) -> Self: ...

    def __new__(
        cls, obj: Any, *, nonblocking: bool | None = None, would_block: ExcTypes = ()
    ) -> Any:
        klass: type[Async[Any]] = cls
        if cls is Async:
            kind = type(cast(object, obj))
            klass = shim_for(kind, Async)
        if nonblocking is None:
            if not _unknown_kind(klass, obj):  # else _create refuses, after validating
                nonblocking = not blocking_by_default(klass)
        elif not isinstance(nonblocking, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"nonblocking= takes True or False, got {nonblocking!r}")
        return klass._create(obj, nonblocking, would_block)

    def __init_subclass__(
        cls, wraps: type | str | None = None, nonblocking: bool | None = None, **kwargs: Any
    ) -> None:
        """Register a shim class: ``class AsyncX(Async[X], wraps=X): ...``.

        ``wraps`` is the class (or its dotted name, looked up once its module
        is imported) that ``Async(obj)`` maps to this shim class; the nearest
        one in ``type(obj).__mro__`` wins.  ``nonblocking=False`` keeps the fd
        blocking by default (objects with no non-blocking mode).  Methods
        marked with :func:`adapt.reads` / :func:`adapt.writes` in the wrapped
        class become shims here.
        """
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            marked = getattr(value, "__adapt_shim__", None)
            if marked is not None and callable(value):
                marked.install(cls, name)
        register(cls, wraps, nonblocking, Async)

    if not TYPE_CHECKING:  # invisible to type checkers: a misspelled shim stays an error

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                # unset slots, protocol probes: no search, no import
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            from .._shims import missing_shim

            raise missing_shim(self, name)

    @classmethod
    def _create(cls: type[_A], obj: object, nonblocking: bool | None, would_block: ExcTypes) -> _A:
        # nonblocking is None: a kind adapt knows nothing of, with no choice given
        if isinstance(obj, Async):
            raise TypeError("the object is already wrapped; use it, or its get_ref()")
        fd = fd_of(obj)
        ident = fd_ident(fd)  # first: a buffered regular file gets its error
        refuse_buffered(obj)
        if nonblocking is None:
            raise unknown_mode_error(obj)
        if not isinstance(would_block, tuple):
            would_block = (would_block,)
        for exc_type in cast(tuple[object, ...], would_block):
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(f"would_block takes exception types, got {exc_type!r}")
        self = object.__new__(cls)
        self._obj = cast(Any, obj)
        self._fd = fd
        self._ident = ident
        self._closed = False
        self._reactor = None
        self._would_block = would_block
        self._budget = _BUDGET
        self._pattern = initial(obj)
        self._follow = not isinstance(obj, int)
        self._never = _UNKNOWN
        self._mode, self._timeout = make_nonblocking(obj, fd, nonblocking)
        return self

    # -- the two primitives ------------------------------------------------

    def read_with(
        self, op: Callable[[T], R], *, wait: Readiness = "readable"
    ) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until readable and retry.

        ::

            n = sock.recv_into(buf)                                   # sync
            n = await a.read_with(lambda s: s.recv_into(buf))         # async

        ``wait="writable"`` waits for the fd to be writable instead (a
        :class:`~adapt.WantRead` / :class:`~adapt.WantWrite` raised by the
        op still picks the direction of that one wait).
        """
        if wait == "readable":
            return self._io(op, READ, self._obj)
        return self._io(op, READ, self._obj, False, readiness(wait))

    def write_with(
        self, op: Callable[[T], R], *, wait: Readiness = "writable"
    ) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until writable and retry.

        ::

            n = os.write(fd, data)                                    # sync
            n = await Async(fd).write_with(lambda fd: os.write(fd, data))

        ``wait="readable"``: the fd's readability is what signals that the op
        may make progress -- for a library whose fd is a notification fd
        rather than the connection (zmq's ``FD``, paramiko's pipe), where
        the fd is always writable or never::

            await Async(fd).write_with(op, wait="readable")
        """
        if wait == "writable":
            return self._io(op, WRITE, self._obj)
        return self._io(op, WRITE, self._obj, False, readiness(wait))

    async def _io(
        self,
        op: Callable[[Any], R],
        direction: int,
        arg: Any,
        direct: bool = False,
        ready: int = -1,
    ) -> R:
        # ``op(arg)`` is the attempt: ``read_with`` passes the op and the
        # object, a shim a bound method of the object and its one argument
        # (no closure to allocate and keep while parked).  ``direct``: op
        # only moves bytes to or from the kernel's buffer (see _predict).
        # ``ready``: the readiness to wait for when the op would block, if
        # not its own ``direction`` (``wait=``).
        # (Few locals: the coroutine lives as long as the task waits, and
        # each one costs 8 bytes per parked task.)
        budget = self._budget - 1
        if budget > 0:
            self._budget = budget
        else:
            # A long run of ops that never had to wait: let other tasks run
            # (before the op, so a cancellation here loses nothing).
            self._budget = _BUDGET
            await current_backend().checkpoint()
        wait_first = direct and self._wait_first(direction)
        next_pattern = DONE[direction]
        if ready < 0:
            ready = direction
        want = ready
        waits = 0
        since = 0.0
        while True:
            if self._closed:
                raise ClosedResourceError("the object is closed")
            if wait_first:
                wait_first = False
            else:
                result = attempt(op, arg, ready, self._would_block)
                if type(result) is not Blocked:
                    self._pattern = next_pattern[self._pattern]
                    return result  # type: ignore[no-any-return]
                if result is RETRY:
                    continue
                want = result.direction
            next_pattern = DONE_WAITED[direction]
            self._budget = _BUDGET
            waits += 1
            if not waits % _SPIN_WAKEUPS and want == WRITE:
                # (writes only: a read whose op re-tests a condition on each
                # wake-up of a readable fd is a documented pattern)
                since = self._spinning(since, want)
            reactor = self._reactor
            if (
                reactor is None
                or not reactor.current()
                or want == self._never
                # about 40 ns a wait (a C call): follow an object that
                # opened a new fd (libpq's multi-host connect does)
                or (self._follow and self._obj.fileno() != self._fd)  # type: ignore[attr-defined]
            ):
                reactor = self._reactor_for(want)
            await reactor.wait(self._fd, want)

    def _wait_first(self, direction: int) -> bool:
        """Whether a direct op should wait before its first attempt (see _predict)."""
        state = self._pattern
        started = START[direction][state]
        if started == state:
            return False
        self._pattern = started
        if started < state:
            return False  # a probe: try first this once
        # not if the object was closed behind our back: the op reports that
        # (a closed socket's fileno() is -1; a closed FileIO's raises)
        try:
            return bool(self._obj.fileno() >= 0)  # type: ignore[attr-defined]
        except ValueError:
            return False

    async def _wait(self, direction: int) -> None:
        """Wait once for readiness in ``direction``; wake-ups may be spurious."""
        if self._closed:
            raise ClosedResourceError("the object is closed")
        await self._reactor_for(direction).wait(self._fd, direction)

    def _reactor_for(self, direction: int) -> Reactor:
        """Get ready to wait in ``direction``: the reactor to wait on.

        Follows an object that opened a new fd since the last wait, and
        refuses a direction the fd can never be ready in.  (A plain function:
        its frame is gone before the task parks; ``_io`` calls it only when
        one of these, or the binding to the running loop, needs work.)
        """
        if self._follow:
            try:
                fd = cast(Any, self._obj).fileno()
            except (OSError, ValueError):
                fd = -1  # closed: the wait on the old number reports it
            if fd != self._fd and fd >= 0:
                self._moved(fd)
        never = self._never
        if never == _UNKNOWN:
            never = self._never = never_ready(self._fd)
        if direction == never:
            raise never_error(self._fd, direction)
        reactor = self._reactor
        if reactor is None or not reactor.current():
            reactor = self._bind()  # first wait, or a new loop
        return reactor

    def _moved(self, fd: int) -> None:
        """The object now has fd ``fd``: wait on that one from now on.

        adapt set no mode on the new fd: the object that opened it chose
        its mode, and :meth:`into_inner` / :meth:`close` leave that mode as
        it is.  Tasks waiting on the old number are woken to retry.
        """
        ident = fd_ident(fd)  # a regular file gets its error
        old = self._fd
        self._fd = fd
        self._ident = ident
        self._mode = (self._mode & SET_TIMEOUT) | (WAS_BLOCKING if os.get_blocking(fd) else 0)
        self._never = _UNKNOWN
        reactor = self._reactor
        if reactor is not None and reactor.current():
            reactor.wake(old)

    def _spinning(self, since: float, direction: int) -> float:
        """Raise if the last ``_SPIN_WAKEUPS`` wake-ups came too fast to be
        real readiness; else return the time now, for the next check."""
        now = time.monotonic()
        if now - since >= _SPIN_SECONDS:
            return now
        raise RuntimeError(
            f"busy loop: fd {self._fd} was reported {DIRECTION_NAMES[direction]} "
            f"{_SPIN_WAKEUPS} times in {(now - since) * 1000:.0f} ms while the op kept "
            f"saying it would block; the fd's readiness is not the op's (an always-"
            f"writable notification fd such as zmq's): wait in the direction that "
            f"signals the op's progress (write_with(op, wait='readable'))"
        )

    def wake(self) -> None:
        """Wake every task waiting on this object's fd so that it retries its op.

        All of them -- both directions, through any wrapper of the fd on this
        loop -- and without closing anything: each runs its op again, and
        waits again if it still would block.  For an edge-triggered source,
        whose one notification a task may consume on behalf of another::

            threading.Condition.notify_all()     # sync, roughly
            a.wake()                             # async

        Call it from the event loop's thread.  A no-op when no task waits.
        """
        if self._closed:
            return
        reactor = self._reactor
        if reactor is not None and reactor.current():
            reactor.wake(self._fd)
            return
        if reactor is not None and reactor.alive():
            raise RuntimeError(
                "wake() from a thread other than the event loop's: schedule it "
                "on the loop's thread (e.g. with adapt.Portal)"
            )
        here = running_reactor()
        if here is not None:
            here.wake(self._fd)  # a wrapper of the same fd may wait here

    def _bind(self) -> Reactor:
        """Remember the running loop's reactor; refuse a second live loop."""
        reactor = current_backend().reactor()
        old = self._reactor
        if old is not None and old is not reactor and old.alive():
            raise RuntimeError(
                "this Async object is in use by another event loop or thread; "
                "wrap the object once per loop"
            )
        self._reactor = reactor
        return reactor

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
        """The wrapped fd: ``Async(sock).fileno() == sock.fileno()``; -1 once closed."""
        return -1 if self._closed else self._fd

    @property
    def closed(self) -> bool:
        """True after :meth:`close`, :meth:`aclose` or :meth:`into_inner`."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state} {self._obj!r}>"

    # -- ending ------------------------------------------------------------

    def _detach(self) -> bool:
        """Mark closed, wake waiters with ClosedResourceError, restore the mode.

        Returns whether the object still owned its fd number; if not, the
        mode is left alone, and waiters are woken only if the number is free
        (a number now naming another file is not ours to touch).  Raises,
        changing nothing, when called from a thread other than that of the
        running loop the wrapper is bound to.
        """
        bound = self._reactor
        if bound is not None and bound.alive() and not bound.current():
            raise RuntimeError("close this Async object from the thread of the event loop using it")
        owner = fd_owner(self._obj, self._fd, self._ident)
        self._closed = True
        self._reactor = None
        if owner == OTHER:
            return False
        here = running_reactor()
        for reactor in (bound, here) if here is not bound else (bound,):
            if reactor is not None:
                reactor.notify_closing(self._fd)
        if owner == FREE:
            return False
        try:
            restore_mode(self._obj, self._fd, self._mode, self._timeout)
        except (OSError, ValueError):
            pass  # closed by another thread just now
        return True

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
        owned = self._detach()
        obj = self._obj
        if isinstance(obj, int):
            if owned:
                os.close(obj)  # else the number may name another file by now
        else:
            cast(Any, obj).close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`; always a checkpoint.

        Example::

            sock.close()                # sync
            await Async(sock).aclose()  # async
        """
        self.close()
        await current_backend().checkpoint()
