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
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

from .._backends import Reactor, current_backend, running_reactor
from .._errors import READ, WRITE, ClosedResourceError
from .._resource import AsyncResource
from ._fd import (
    FREE,
    OTHER,
    RETRY,
    Blocked,
    attempt,
    fd_ident,
    fd_of,
    fd_owner,
    make_nonblocking,
    refuse_buffered,
    restore_mode,
)
from ._predict import DONE, DONE_WAITED, START, initial
from ._subclass import document, for_subclass

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

#: ops in a row that may complete without waiting before the task yields
#: once to the loop anyway, so a busy wrapper cannot starve the other tasks
_BUDGET = 64

#: shim classes by the type they wrap, filled by ``Async.__init_subclass__``
_SHIMS: dict[type, type[Async[Any]]] = {}
#: shim classes declared by dotted name (``wraps="ssl.SSLSocket"``), so adapt
#: need not import ssl or multiprocessing: each is looked up once its module is
#: imported (no object of the class can exist before)
_LAZY_SHIMS: dict[str, type[Async[Any]]] = {}
#: shim classes that leave the fd in blocking mode unless told otherwise
_BLOCKING_SHIMS: set[type[Async[Any]]] = set()
#: the shim class for each concrete type wrapped so far (``Async`` when none)
_RESOLVED: dict[type, type[Async[Any]]] = {}


def _shim_for(klass: type) -> type[Async[Any]]:
    """The shim class for objects of type ``klass``: the nearest in its MRO."""
    for dotted in [d for d in _LAZY_SHIMS if d.rpartition(".")[0] in sys.modules]:
        shim = _LAZY_SHIMS.pop(dotted)
        module, _, qualname = dotted.rpartition(".")
        wrapped = getattr(sys.modules[module], qualname, None)
        if not isinstance(wrapped, type):
            raise TypeError(f"{shim.__qualname__}: wraps={dotted!r} names no class")
        _SHIMS.setdefault(wrapped, shim)
        document(shim, wrapped, Async)
    found: type[Async[Any]] = Async
    for base in klass.__mro__:
        known = _SHIMS.get(base)
        if known is not None:
            found = known
            if base is not klass:
                found = for_subclass(known, base, klass, vars(Async))
            break
    _RESOLVED[klass] = found
    return found


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
            :meth:`into_inner` and :meth:`close`).  Pass False only when every
            op is non-blocking by itself (e.g. reads with ``timeout=0``).
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
            klass = _RESOLVED.get(kind) or _shim_for(kind)
        if nonblocking is None:
            nonblocking = klass not in _BLOCKING_SHIMS
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
        if nonblocking is None:
            nonblocking = not any(base in _BLOCKING_SHIMS for base in cls.__mro__)
        if not nonblocking:
            _BLOCKING_SHIMS.add(cls)
        if wraps is None:
            return
        if isinstance(wraps, str):
            if "." not in wraps:
                raise ValueError(f"wraps={wraps!r}: give the class or its dotted name")
            _LAZY_SHIMS[wraps] = cls
        elif isinstance(wraps, type):  # pyright: ignore[reportUnnecessaryIsInstance]
            if issubclass(wraps, Async):
                raise TypeError("wraps= names the sync class, not an Async subclass")
            _SHIMS[wraps] = cls
        else:
            raise TypeError(f"wraps= takes a class, got {wraps!r}")
        _RESOLVED.clear()

    if not TYPE_CHECKING:  # invisible to type checkers: a misspelled shim stays an error

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                # unset slots, protocol probes: no search, no import
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            from .._shims import missing_shim

            raise missing_shim(self, name)

    @classmethod
    def _create(cls: type[_A], obj: object, nonblocking: bool, would_block: ExcTypes) -> _A:
        if isinstance(obj, Async):
            raise TypeError("the object is already wrapped; use it, or its get_ref()")
        fd = fd_of(obj)
        ident = fd_ident(fd)  # first: a buffered regular file gets its error
        refuse_buffered(obj)
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
        self._mode, self._timeout = make_nonblocking(obj, fd, nonblocking)
        return self

    # -- the two primitives ------------------------------------------------

    def read_with(self, op: Callable[[T], R]) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until readable and retry.

        ::

            n = sock.recv_into(buf)                                   # sync
            n = await a.read_with(lambda s: s.recv_into(buf))         # async
        """
        return self._io(op, READ, self._obj)

    def write_with(self, op: Callable[[T], R]) -> Coroutine[Any, Any, R]:
        """Run ``op(obj)``; while it would block, wait until writable and retry.

        ::

            n = os.write(fd, data)                                    # sync
            n = await Async(fd).write_with(lambda fd: os.write(fd, data))
        """
        return self._io(op, WRITE, self._obj)

    async def _io(
        self, op: Callable[[Any], R], direction: int, arg: Any, direct: bool = False
    ) -> R:
        # ``op(arg)`` is the attempt: ``read_with`` passes the op and the
        # object, a shim a bound method of the object and its one argument
        # (no closure to allocate and keep while parked).  ``direct``: op
        # only moves bytes to or from the kernel's buffer (see _predict).
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
        want = direction
        while True:
            if self._closed:
                raise ClosedResourceError("the object is closed")
            if wait_first:
                wait_first = False
            else:
                result = attempt(op, arg, direction, self._would_block)
                if type(result) is not Blocked:
                    self._pattern = next_pattern[self._pattern]
                    return result  # type: ignore[no-any-return]
                if result is RETRY:
                    continue
                want = result.direction
            next_pattern = DONE_WAITED[direction]
            self._budget = _BUDGET
            reactor = self._reactor
            if reactor is None or not reactor.current():
                reactor = self._bind()  # first wait, or a new loop
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
        reactor = self._reactor
        if reactor is None or not reactor.current():
            reactor = self._bind()
        await reactor.wait(self._fd, direction)

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
