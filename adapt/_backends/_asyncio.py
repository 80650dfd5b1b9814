"""asyncio (and uvloop) backend.

Theory of operation
-------------------
asyncio offers one reader and one writer callback per fd (``add_reader``);
a second ``add_reader`` silently replaces the first, so two tasks waiting on
one fd lose a wake-up.  We register one callback per fd and direction and
keep our own list of waiting futures, all of which are woken together.

Registration is *sticky*: the fd stays registered while it is in use, and is
removed lazily, the first time the loop reports readiness that nobody waits
for (and always on close).  A tight read loop therefore costs no
``epoll_ctl`` at all, where ``sock_recv`` pays two per wait.

The selector is level-triggered.  On the selector loops, ``_run_once``
first polls, queues the ready callbacks behind the handles already
scheduled, then runs them.  A task woken by our callback in iteration N runs
in N+1 -- but N+1's poll already queued *another* readiness callback for the
same fd, because the data was not consumed yet.  The task consumes the data,
finds the fd empty, waits again, and that stale callback would wake it for
nothing (a task step and a failed op, every round trip).  So after a wake-up
the next readiness callback for that direction is skipped.  Skipping is
always safe, stale or not: the fd stays registered while someone waits and
the selector is level-triggered, so readiness that is real is reported
again by the very next poll; the worst case is one loop iteration of delay.
(Scheduling a marker handle to tell stale from fresh callbacks costs an
extra loop iteration on *every* wait, which is slower.)  uvloop runs the
woken task before it polls again, so it has no stale callbacks and the
filter is off there.

Close order: mark closed, fail every waiter with ClosedResourceError,
deregister.  A fd number that was closed behind our back and reused is found
by its ``(st_dev, st_ino)`` identity when a new wrapper binds it; the stale
watch is closed and the loop's registration purged before the new one, since
asyncio would otherwise modify a registration the kernel already dropped and
wait forever.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio import AbstractEventLoop, Future
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .._errors import READ, ClosedResourceError

__all__ = ["BACKEND"]

_get_running_loop = asyncio.get_running_loop


def _closed_error() -> ClosedResourceError:
    return ClosedResourceError("the object was closed while this task waited on it")


def _purge(loop: AbstractEventLoop, fd: int) -> None:
    """Drop any registration of ``fd`` on ``loop``, even a stale one."""
    for remove in (loop.remove_writer, loop.remove_reader):
        try:
            remove(fd)
        except (OSError, ValueError):
            pass  # the kernel already forgot the fd; the loop's map is clean now


class _Reactor:
    """Per-loop state: the watches, and whether stale callbacks happen."""

    __slots__ = ("loop", "watches", "filter_stale", "__weakref__")

    def __init__(self, loop: AbstractEventLoop) -> None:
        self.loop = loop
        self.watches: dict[int, _Watch] = {}
        self.filter_stale = isinstance(loop, BaseSelectorEventLoop)


class _Watch:
    __slots__ = (
        "reactor",
        "loop",
        "filter_stale",
        "fd",
        "ident",
        "closed",
        "users",
        "readers",
        "writers",
        "r_skip",
        "w_skip",
        "reg_r",
        "reg_w",
    )

    def __init__(self, reactor: _Reactor, fd: int, ident: tuple[int, int]) -> None:
        self.reactor = reactor
        self.loop = reactor.loop
        self.filter_stale = reactor.filter_stale
        self.fd = fd
        self.ident = ident
        self.closed = False
        self.users = 0
        # () while nobody waits: one empty tuple shared by all idle watches
        self.readers: list[Future[None]] | tuple[()] = ()
        self.writers: list[Future[None]] | tuple[()] = ()
        # skip the next readiness callback (it is probably stale, see above)
        self.r_skip = self.w_skip = False
        self.reg_r = self.reg_w = False

    # -- FdWatch -----------------------------------------------------------

    def current(self) -> bool:
        try:
            return not self.closed and _get_running_loop() is self.loop
        except RuntimeError:
            return False

    def alive(self) -> bool:
        return not self.closed and not self.loop.is_closed()

    def arm(self, direction: int) -> Future[None]:
        if self.closed:
            raise ClosedResourceError("the object is closed")
        fut: Future[None] = self.loop.create_future()
        if direction == READ:
            readers = self.readers
            if readers:
                readers.append(fut)
            else:
                if not self.reg_r:  # (first: it raises for a bad fd)
                    self.loop.add_reader(self.fd, self._on_readable)
                    self.reg_r = True
                self.readers = [fut]
        else:
            writers = self.writers
            if writers:
                writers.append(fut)
            else:
                if not self.reg_w:
                    self.loop.add_writer(self.fd, self._on_writable)
                    self.reg_w = True
                self.writers = [fut]
        return fut

    def settle(
        self, direction: int, waiter: object, exc: BaseException | None
    ) -> BaseException | None:
        if exc is not None:
            # cancelled (or closed): forget the future, or a loop that keeps
            # timing out reads would grow the list without bound
            waiters = self.readers if direction == READ else self.writers
            if waiters:
                try:
                    waiters.remove(waiter)  # type: ignore[arg-type]
                except ValueError:
                    pass
        return exc

    def checkpoint(self) -> Awaitable[None]:
        return asyncio.sleep(0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        waiters = [*self.readers, *self.writers]
        self.readers = self.writers = ()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(_closed_error())
        if self.reactor.watches.get(self.fd) is self:
            del self.reactor.watches[self.fd]
        if (self.reg_r or self.reg_w) and not self.loop.is_closed():
            self.reg_r = self.reg_w = False
            _purge(self.loop, self.fd)

    def release_soon(self) -> None:
        try:
            if self.current():
                self.loop.call_soon(self._release)
            else:
                self.loop.call_soon_threadsafe(self._release)
        except RuntimeError:
            pass  # the loop is closed: its registrations died with it

    def _release(self) -> None:
        if self.users <= 0:
            self.close()

    # -- loop callbacks ----------------------------------------------------

    def _on_readable(self) -> None:
        readers = self.readers
        if not readers:
            # readiness nobody waits for: stop polling (lazy deregistration)
            self.loop.remove_reader(self.fd)
            self.reg_r = self.r_skip = False
        elif self.r_skip:
            self.r_skip = False  # probably polled before the woken task ran
        else:
            self.readers = ()
            self.r_skip = self.filter_stale
            for fut in readers:
                if not fut.done():
                    fut.set_result(None)

    def _on_writable(self) -> None:
        writers = self.writers
        if not writers:
            self.loop.remove_writer(self.fd)
            self.reg_w = self.w_skip = False
        elif self.w_skip:
            self.w_skip = False
        else:
            self.writers = ()
            self.w_skip = self.filter_stale
            for fut in writers:
                if not fut.done():
                    fut.set_result(None)


class _Token:
    __slots__ = ("loop",)

    def __init__(self, loop: AbstractEventLoop) -> None:
        self.loop = loop

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def is_current(self) -> bool:
        try:
            return _get_running_loop() is self.loop
        except RuntimeError:
            return False


#: how anyio's cancel scopes mark the cancellations they deliver
_ANYIO_SCOPE = "Cancelled via cancel scope "


def _by_anyio(exc: asyncio.CancelledError) -> bool:
    """Whether an anyio cancel scope delivered ``exc`` (it re-delivers by itself)."""
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, str) and reason.startswith(_ANYIO_SCOPE)


class _Waiter:
    __slots__ = ("fut", "outcome")

    def __init__(self) -> None:
        self.fut: Future[None] = asyncio.get_running_loop().create_future()
        self.outcome: tuple[object, BaseException | None] | None = None

    def _deliver(self) -> Any:
        assert self.outcome is not None
        value, exc = self.outcome
        if exc is not None:
            raise exc
        return value

    async def wait(self, abort: Callable[[], bool] | None = None) -> Any:
        try:
            await self.fut
        except asyncio.CancelledError as exc:
            if self.outcome is None and (abort is None or abort()):
                raise
            cancelled: asyncio.CancelledError | None = None if _by_anyio(exc) else exc
        else:
            return self._deliver()
        # The canceller could not stop the work (or its outcome arrived in
        # the same loop iteration): wait for the outcome, then raise the
        # cancellation here, inside the scope that asked for it.  Returning
        # the value and re-cancelling the task later (uncancel + cancel)
        # would escape ``asyncio.timeout()``: the CancelledError would hit an
        # unrelated await after the scope.  An anyio cancel scope is the
        # exception: it re-delivers by itself at every await inside the scope,
        # so the value is returned as on trio.
        while self.outcome is None:
            fut = self.fut = asyncio.get_running_loop().create_future()
            try:
                await fut
            except asyncio.CancelledError as exc:
                if not _by_anyio(exc):
                    cancelled = exc
        if cancelled is None:
            return self._deliver()
        error = self.outcome[1]
        self.outcome = (None, None)  # no cycle through the frames that raised it
        if error is not None:
            cancelled.__context__ = error  # what the work raised is not hidden
        raise cancelled

    def wake(self, value: object = None, exc: BaseException | None = None) -> None:
        if self.outcome is not None:
            return
        self.outcome = (value, exc)
        if not self.fut.done():
            self.fut.set_result(None)


_reactors: weakref.WeakKeyDictionary[AbstractEventLoop, _Reactor] = weakref.WeakKeyDictionary()


class AsyncioBackend:
    name = "asyncio"

    def watch(self, fd: int, ident: tuple[int, int]) -> _Watch:
        loop = asyncio.get_running_loop()
        reactor = _reactors.get(loop)
        if reactor is None:
            reactor = _reactors[loop] = _Reactor(loop)
        watch = reactor.watches.get(fd)
        if watch is not None:
            if watch.ident == ident:
                return watch
            # the fd was closed behind our back and its number reused
            watch.close()
        # clear whatever registration the loop may still hold for this number
        _purge(loop, fd)
        watch = reactor.watches[fd] = _Watch(reactor, fd, ident)
        return watch

    def token(self) -> _Token:
        return _Token(asyncio.get_running_loop())

    def waiter(self) -> _Waiter:
        return _Waiter()

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        task = loop.create_task(fn())
        background = _background(loop)  # the loop keeps only a weak reference
        background.add(task)
        task.add_done_callback(background.discard)

        def cancel() -> None:
            # queued behind the task's first step, so that fn always starts
            loop.call_soon(task.cancel)

        return cancel


def _background(loop: AbstractEventLoop) -> set[asyncio.Task[object]]:
    """Tasks started by ``spawn`` on ``loop``, kept alive until they finish.

    The set hangs on the loop object itself, not on this module: a task
    spawned in the loop's last iteration (``asyncio.run`` shutting down)
    never runs, and must be dropped with the loop -- so that its coroutine
    is closed and whoever waits for it learns it -- instead of keeping the
    closed loop alive forever.
    """
    tasks: set[asyncio.Task[object]] | None = getattr(loop, _BACKGROUND, None)
    if tasks is None:
        tasks = set()
        setattr(loop, _BACKGROUND, tasks)
    return tasks


_BACKGROUND = "_adapt_background_tasks"

BACKEND = AsyncioBackend()
