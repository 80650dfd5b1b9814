"""trio backend.

Theory of operation
-------------------
trio's ``wait_readable(fd)`` allows one waiting task per fd and direction
(a second gets ``BusyResourceError``).  adapt allows many, so the first
waiter becomes the *leader* and waits on the fd; later waiters park as
followers and are woken by the leader when its wait ends, for whatever
reason (readiness, cancellation, close).  A woken follower just retries its
operation: if it would block again it becomes the next leader.

The leader's wait, fast path: on Linux trio's I/O manager keeps, per fd, the
task waiting to read and to write (``EpollWaiters``), and re-arms a one-shot
epoll registration from them (``_update_registrations``).  ``wait_readable``
is five frames deep when it parks the task (three coroutines, then
``wait_task_rescheduled`` and the generator that yields to the run loop);
the leader sets the task itself and yields the same ``WaitTaskRescheduled``
message from one generator, :func:`_park` -- the same registration, parking,
cancellation and wake-up, minus four frames: about 1 us per wait, and about 1 KB
per parked task.  These are trio internals, so :func:`_epoll_manager`
checks their shape when a run first wraps an fd and otherwise the public
``wait_readable``/``wait_writable`` are used (they are also used when a task
outside adapt already waits on the fd, so that trio raises its
``BusyResourceError``).
``arm`` is KI-protected like trio's own primitives: a KeyboardInterrupt
cannot land between registering the task and returning; one landing at the
very start of the wait unwinds through ``settle``, which drops the
registration.

trio registers an fd only while someone waits on it (one-shot epoll), so the
only stale state to fear is an fd closed while waited on; ``close()`` calls
``notify_closing`` before the caller closes the fd, as trio requires, which
wakes the leader with ``trio.ClosedResourceError`` (mapped to adapt's).
"""

from __future__ import annotations

import importlib
import math
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from functools import partial
from threading import get_ident
from typing import Any

import outcome
import trio

from .._errors import READ, WRITE, ClosedResourceError

__all__ = ["BACKEND"]

_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_current_task = trio.lowlevel.current_task
_reschedule = trio.lowlevel.reschedule
_current_token = trio.lowlevel.current_trio_token
_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED
_TrioClosed = trio.ClosedResourceError


def _internals() -> Any:
    """trio internals for the fast path (see the module docstring), or None."""
    try:
        epoll = importlib.import_module("trio._core._io_epoll")
        run = importlib.import_module("trio._core._run")
        traps = importlib.import_module("trio._core._traps")
        return types.SimpleNamespace(
            manager=epoll.EpollIOManager,
            waiters=epoll.EpollWaiters,
            context=run.GLOBAL_RUN_CONTEXT,
            park=traps.WaitTaskRescheduled,
        )
    except (ImportError, AttributeError):  # not Linux, or another layout
        return None


_TRIO: Any = _internals()
#: what a task yields to trio's run loop to park, and the run's thread-local
#: state (whose ``task`` is the current task): fast path only
_WaitTaskRescheduled: Any = _TRIO.park if _TRIO is not None else None
_CONTEXT: Any = _TRIO.context if _TRIO is not None else None

#: use trio's I/O manager directly when its shape is the expected one
FAST_PATH = True


def _epoll_manager() -> Any:
    """The current run's epoll I/O manager, if it has the expected shape."""
    if not FAST_PATH or _TRIO is None:
        return None
    io = getattr(getattr(_TRIO.context, "runner", None), "io_manager", None)
    if type(io) is not _TRIO.manager:
        return None
    registered = getattr(io, "_registered", None)
    fields = getattr(_TRIO.waiters, "__attrs_attrs__", ())
    names = {getattr(field, "name", None) for field in fields}
    if (
        not isinstance(registered, dict)
        or not callable(getattr(io, "_update_registrations", None))
        or not {"read_task", "write_task"} <= names
    ):
        return None
    return io


def _closed_error() -> ClosedResourceError:
    return ClosedResourceError("the object was closed while this task waited on it")


class _Reactor:
    """Per-run state.  ``owner`` makes the per-wait "is this still my run?"
    test an attribute read instead of a trio API call."""

    __slots__ = ("io", "owner", "token", "leading", "followers", "scopes")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        #: trio's epoll I/O manager, for the fast path (None: public API)
        self.io = _epoll_manager()
        #: fd -> a bit per direction in which a task leads the wait (only
        #: while one does, like trio's own registration)
        self.leading: dict[int, int] = {}
        #: ``fd * 2 + direction`` -> the tasks parked behind the leader
        #: (only while there are some)
        self.followers: dict[int, list[trio.lowlevel.Task]] = {}
        #: ``fd * 2 + direction`` -> the cancel scope around a leader's wait
        #: on the public API (no fast path), which :meth:`wake` cancels
        self.scopes: dict[int, trio.CancelScope] = {}
        #: the run's thread while the run lasts, then None
        self.owner: int | None = get_ident()
        trio.lowlevel.spawn_system_task(self._outlive, name="adapt run watcher")

    async def _outlive(self) -> None:
        # system tasks are cancelled when the run's main task returns
        try:
            await trio.sleep_forever()
        finally:
            self.owner = None

    # -- Reactor -----------------------------------------------------------

    def current(self) -> bool:
        return self.owner == get_ident()

    def alive(self) -> bool:
        return self.owner is not None

    async def wait(self, fd: int, direction: int) -> None:
        leading = self.leading
        bits = leading.get(fd, 0)
        bit = 1 << direction
        if bits & bit:
            await _follow(self.followers.setdefault(fd * 2 + direction, []))
            return
        leading[fd] = bits | bit
        try:
            io = self.io
            if io is None:
                # trio cannot wake a wait_readable without closing the fd:
                # :meth:`wake` cancels this scope instead (off the fast path)
                scope = self.scopes[fd * 2 + direction] = trio.CancelScope()
                try:
                    with scope:
                        await (_wait_readable(fd) if direction == READ else _wait_writable(fd))
                finally:
                    del self.scopes[fd * 2 + direction]
            else:
                # the fast path: what wait_readable does, in one frame (see
                # the module docstring).  If the registration fails (a bad
                # fd), trio has cleared it and raises here.
                waiters = io._registered[fd]
                if direction == READ and waiters.read_task is None:
                    waiters.read_task = _CONTEXT.task
                    io._update_registrations(fd)
                    await _park(partial(self._abort, fd, "read_task"))
                elif direction == WRITE and waiters.write_task is None:
                    waiters.write_task = _CONTEXT.task
                    io._update_registrations(fd)
                    await _park(partial(self._abort, fd, "write_task"))
                else:
                    # a task outside adapt waits already: trio raises
                    # BusyResourceError
                    await (_wait_readable(fd) if direction == READ else _wait_writable(fd))
        except _TrioClosed:
            raise _closed_error() from None
        except BaseException:
            # a KeyboardInterrupt thrown in before the task parked: trio never
            # saw the wait, so drop the fast path's registration ourselves
            if self.io is not None:
                self._drop(fd, "read_task" if direction == READ else "write_task")
            raise
        finally:
            # the leader's wait ended, for whatever reason (a close included:
            # the bit is the leader's to clear): wake the followers, one of
            # which becomes the next leader if it must wait
            bits = leading[fd] & ~bit
            if bits:
                leading[fd] = bits
            else:
                del leading[fd]
            if self.followers:
                for task in self.followers.pop(fd * 2 + direction, ()):
                    _reschedule(task)

    def wake(self, fd: int) -> None:
        bits = self.leading.get(fd, 0)
        for direction, name in ((READ, "read_task"), (WRITE, "write_task")):
            for task in self.followers.pop(fd * 2 + direction, ()):
                _reschedule(task)
            if not bits & (1 << direction):
                continue
            io = self.io
            if io is None:
                self.scopes[fd * 2 + direction].cancel()
                continue
            # the fast path parked the leader itself (``_park``), so it may
            # wake it itself: what trio does on readiness, minus the event
            waiters = io._registered.get(fd)
            leader = None if waiters is None else getattr(waiters, name)
            if leader is not None:  # else readiness or a cancellation woke it already
                setattr(waiters, name, None)
                io._update_registrations(fd)
                _reschedule(leader)

    def _abort(self, fd: int, name: str, _: object) -> trio.lowlevel.Abort:
        # called by trio's run loop for the registered task, when cancelled
        waiters = self.io._registered.get(fd)
        if waiters is not None:
            setattr(waiters, name, None)
            self.io._update_registrations(fd)
        return _SUCCEEDED

    def _drop(self, fd: int, name: str) -> None:
        """Drop the fast path's registration of the current task, if still there."""
        waiters = self.io._registered.get(fd)
        if waiters is not None and getattr(waiters, name) is _current_task():
            setattr(waiters, name, None)
            self.io._update_registrations(fd)

    def notify_closing(self, fd: int) -> None:
        for direction in (READ, WRITE):
            for task in self.followers.pop(fd * 2 + direction, ()):
                _reschedule(task, outcome.Error(_closed_error()))
        if self.owner is not None:
            # wakes a leader with trio.ClosedResourceError and drops trio's
            # epoll registration, so the fd number can be reused safely
            trio.lowlevel.notify_closing(fd)

    def checkpoint(self) -> Awaitable[None]:
        return trio.lowlevel.checkpoint()


_REACTOR: trio.lowlevel.RunVar[_Reactor] = trio.lowlevel.RunVar("adapt_reactor")


async def _follow(followers: list[trio.lowlevel.Task]) -> None:
    """Park behind the task that leads the wait on this fd and direction."""
    task = trio.lowlevel.current_task()
    followers.append(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        try:
            followers.remove(task)
        except ValueError:
            pass
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


@types.coroutine
def _park(abort: Callable[[Any], trio.lowlevel.Abort]) -> Generator[Any, Any, None]:
    """``wait_task_rescheduled``, one frame instead of two."""
    return (yield _WaitTaskRescheduled(abort)).unwrap()  # type: ignore[no-any-return]


# like trio's own primitives: no KeyboardInterrupt between registering a task
# and parking it (see the module docstring)
# (trio 0.28 and later mark the function itself; earlier versions return a
# protected wrapper, which must be the one called)
_Reactor.wait = trio.lowlevel.enable_ki_protection(_Reactor.wait)  # type: ignore[method-assign]
_follow = trio.lowlevel.enable_ki_protection(_follow)


class _Token:
    __slots__ = ("token",)

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            self.token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise RuntimeError("the trio run this token belongs to has finished") from None

    def is_current(self) -> bool:
        try:
            return _current_token() is self.token
        except RuntimeError:
            return False


class _Waiter:
    __slots__ = ("task", "outcome")

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.outcome: outcome.Outcome[Any] | None = None

    async def wait(self, abort: Callable[[], bool] | None = None) -> Any:
        if self.outcome is not None:
            await trio.lowlevel.checkpoint()
            return self.outcome.unwrap()
        self.task = trio.lowlevel.current_task()

        def abort_fn(_: object) -> trio.lowlevel.Abort:
            if abort is None or abort():
                self.task = None
                return trio.lowlevel.Abort.SUCCEEDED
            return trio.lowlevel.Abort.FAILED

        return await trio.lowlevel.wait_task_rescheduled(abort_fn)

    def wake(self, value: object = None, exc: BaseException | None = None) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome.Error(exc) if exc is not None else outcome.Value(value)
        if self.task is not None:
            task, self.task = self.task, None
            _reschedule(task, self.outcome)


class TrioBackend:
    name = "trio"

    def reactor(self) -> _Reactor:
        try:
            return _REACTOR.get()
        except LookupError:
            reactor = _Reactor(_current_token())
            _REACTOR.set(reactor)
            return reactor

    def token(self) -> _Token:
        return _Token(_current_token())

    def waiter(self) -> _Waiter:
        return _Waiter()

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def cancel_pending(self) -> bool:
        return trio.current_effective_deadline() == -math.inf

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> Callable[[], None]:
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await fn()

        # a system task: it needs no nursery, and is cancelled when the run ends
        trio.lowlevel.spawn_system_task(run, name=fn)
        return scope.cancel


BACKEND = TrioBackend()
