"""trio backend.

Theory of operation
-------------------
trio's ``wait_readable(fd)`` allows one waiting task per fd and direction
(a second gets ``BusyResourceError``).  adapt allows many, so the first
waiter becomes the *leader* and calls ``wait_readable``; later waiters park
as followers and are woken by the leader when its wait ends, for whatever
reason (readiness, cancellation, close).  A woken follower just retries its
operation: if it would block again it becomes the next leader.  The common
single-waiter case costs one extra attribute test over a raw
``wait_readable`` loop.

trio registers an fd only while someone waits on it (one-shot epoll), so the
only stale state to fear is an fd closed while waited on; ``close()`` calls
``notify_closing`` before the caller closes the fd, as trio requires, which
wakes the leader with ``trio.ClosedResourceError`` (mapped to adapt's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from threading import get_ident
from typing import Any

import outcome
import trio

from .._errors import READ, ClosedResourceError

__all__ = ["BACKEND"]

_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_reschedule = trio.lowlevel.reschedule
_current_token = trio.lowlevel.current_trio_token


def _closed_error() -> ClosedResourceError:
    return ClosedResourceError("the object was closed while this task waited on it")


class _Reactor:
    """Per-run state.  ``alive`` and ``thread`` make the per-wait "is this
    still my run?" test two attribute reads instead of a trio API call."""

    __slots__ = ("alive", "thread", "token", "watches")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.watches: dict[int, _Watch] = {}
        self.thread = get_ident()
        self.alive = True
        trio.lowlevel.spawn_system_task(self._outlive, name="adapt run watcher")

    async def _outlive(self) -> None:
        # system tasks are cancelled when the run's main task returns
        try:
            await trio.sleep_forever()
        finally:
            self.alive = False


_REACTOR: trio.lowlevel.RunVar[_Reactor] = trio.lowlevel.RunVar("adapt_reactor")


class _Watch:
    # Few and small fields: one watch exists per wrapped fd.  ``leading`` is a
    # bit per direction; ``followers`` stays None until two tasks contend.
    __slots__ = ("closed", "fd", "followers", "ident", "leading", "reactor", "token", "users")

    def __init__(self, reactor: _Reactor, fd: int, ident: tuple[int, int]) -> None:
        self.reactor = reactor
        self.token = reactor.token
        self.fd = fd
        self.ident = ident
        self.closed = False
        self.users = 0
        self.leading = 0
        self.followers: tuple[list[trio.lowlevel.Task], list[trio.lowlevel.Task]] | None = None

    def current(self) -> bool:
        reactor = self.reactor
        return not self.closed and reactor.alive and reactor.thread == get_ident()

    def alive(self) -> bool:
        return not self.closed and self.reactor.alive

    def arm(self, direction: int) -> Any:
        if self.closed:
            raise ClosedResourceError("the object is closed")
        bit = 1 << direction
        if self.leading & bit:
            return _follow(self, direction)
        # the leader awaits trio's own coroutine: no extra frame on the hot path
        self.leading |= bit
        return _wait_readable(self.fd) if direction == READ else _wait_writable(self.fd)

    def settle(
        self, direction: int, waiter: Any, exc: BaseException | None
    ) -> BaseException | None:
        if waiter.cr_code is not _FOLLOW_CODE:
            # the leader's wait ended, for whatever reason: wake the followers,
            # one of which becomes the next leader when it retries
            self.leading &= ~(1 << direction)
            if self.followers is not None:
                followers = self.followers[direction]
                if followers:
                    tasks = followers.copy()
                    followers.clear()
                    for task in tasks:
                        _reschedule(task)
        if isinstance(exc, trio.ClosedResourceError):
            return _closed_error()
        return exc

    def checkpoint(self) -> Awaitable[None]:
        return trio.lowlevel.checkpoint()

    def _take_followers(self) -> list[trio.lowlevel.Task]:
        if self.followers is None:
            return []
        tasks = [*self.followers[0], *self.followers[1]]
        self.followers = None
        return tasks

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self._take_followers():
            _reschedule(task, outcome.Error(_closed_error()))
        if self.reactor.watches.get(self.fd) is self:
            del self.reactor.watches[self.fd]
        # wakes a leader with trio.ClosedResourceError and drops trio's epoll
        # registration, so the fd number can be reused safely
        trio.lowlevel.notify_closing(self.fd)

    def release_soon(self) -> None:
        try:
            self.token.run_sync_soon(self._release)
        except trio.RunFinishedError:
            pass  # the run is over: trio's registrations died with it

    def _release(self) -> None:
        if self.users <= 0:
            self.close()


async def _follow(watch: _Watch, direction: int) -> None:
    """Park behind the task that leads the wait on this fd and direction."""
    task = trio.lowlevel.current_task()
    if watch.followers is None:
        watch.followers = ([], [])
    followers = watch.followers[direction]
    followers.append(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        try:
            followers.remove(task)
        except ValueError:
            pass
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


_FOLLOW_CODE = _follow.__code__


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

    def watch(self, fd: int, ident: tuple[int, int]) -> _Watch:
        try:
            reactor = _REACTOR.get()
        except LookupError:
            reactor = _Reactor(_current_token())
            _REACTOR.set(reactor)
        watch = reactor.watches.get(fd)
        if watch is not None:
            if watch.ident == ident:
                return watch
            watch.close()  # the fd was closed behind our back and reused
        watch = reactor.watches[fd] = _Watch(reactor, fd, ident)
        return watch

    def token(self) -> _Token:
        return _Token(_current_token())

    def waiter(self) -> _Waiter:
        return _Waiter()

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> Callable[[], None]:
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await fn()

        # a system task: it needs no nursery, and is cancelled when the run ends
        trio.lowlevel.spawn_system_task(run, name=fn)
        return scope.cancel


BACKEND = TrioBackend()
