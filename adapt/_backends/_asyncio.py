"""asyncio (and uvloop) backend.

Theory of operation
-------------------
asyncio offers one reader and one writer callback per fd (``add_reader``);
a second ``add_reader`` silently replaces the first, so two tasks waiting on
one fd would lose a wake-up.  The reactor keeps, per loop, the futures of the
tasks waiting on each fd and direction, and one loop registration for them:

* **Registered only while a task waits.**  The first waiter in a direction
  calls ``add_reader``; the readiness callback removes the registration
  before it wakes the waiters (all of them: a wake-up only means "try
  again"); the last waiter leaving (cancelled) removes it too.  An fd with
  nobody waiting has no registration and no entry, so an fd closed behind
  adapt's back between waits leaves nothing stale, and a reused fd number
  starts from scratch -- whatever kind of file it is.  The price is an
  ``epoll_ctl`` pair per wait, what ``loop.sock_recv`` pays; an op that
  succeeds at once pays nothing.
* **Joins re-register.**  A registration can only be stale while a task
  waits on an fd that was closed behind adapt's back.  So when a task joins
  a wait already registered, or the other direction is registered too, the
  fd's registrations are dropped and made again (:meth:`_Reactor._sync`).
  That never changes the mask of a registration the kernel may have
  forgotten, which uvloop answers with ``abort()``; on selector loops a
  failed ``modify`` would drop the other direction's callback.
* **Never replace another library's callback.**  On selector loops the
  selector's map shows one; adapt refuses to wait (``RuntimeError``)
  instead of silently dropping it.  (uvloop does not expose it.)
* uvloop closes its poll handle after an error event (a refused connect, an
  ICMP error); it calls the callbacks first, which remove the registration,
  and the next wait makes a new one.

Close order (:meth:`_Reactor.notify_closing`): fail every waiter on the fd
with ClosedResourceError, then remove the registrations; the caller closes
the fd afterwards.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio import AbstractEventLoop, Future
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from .._errors import READ, ClosedResourceError

__all__ = ["BACKEND"]

_get_running_loop = asyncio._get_running_loop


def _closed_error() -> ClosedResourceError:
    return ClosedResourceError("the object was closed while this task waited on it")


def _foreign_error(fd: int, kind: str) -> RuntimeError:
    return RuntimeError(
        f"fd {fd} already has a {kind} callback registered with loop.add_{kind}() by "
        f"other code; asyncio allows one per fd, and adapt will not replace it: "
        f"remove it first (loop.remove_{kind}), or wait through that code"
    )


class _Reactor:
    """The waiting tasks of one loop, by fd and direction."""

    __slots__ = ("loop", "readers", "writers", "selector_map", "__weakref__")

    def __init__(self, loop: AbstractEventLoop) -> None:
        self.loop = loop
        #: fd -> futures of the tasks waiting to read; an fd is in here
        #: exactly while the loop has our reader callback for it
        self.readers: dict[int, list[Future[None]]] = {}
        self.writers: dict[int, list[Future[None]]] = {}
        #: a selector loop's map (fd -> key whose data is the reader and
        #: writer handles), to see another library's callback; None on uvloop
        self.selector_map: Mapping[Any, Any] | None = None
        if isinstance(loop, BaseSelectorEventLoop):
            selector = getattr(loop, "_selector", None)
            if selector is not None:
                # the selector's own dict where it has one: its public
                # get_map() costs a few Python calls per lookup, once per wait
                fd_to_key = getattr(selector, "_fd_to_key", None)
                self.selector_map = fd_to_key if isinstance(fd_to_key, dict) else selector.get_map()

    # -- Reactor -----------------------------------------------------------

    def current(self) -> bool:
        return _get_running_loop() is self.loop

    def alive(self) -> bool:
        return self.loop.is_running()

    async def wait(self, fd: int, direction: int) -> None:
        waiting = self.readers if direction == READ else self.writers
        fut: Future[None] = self.loop.create_future()
        futs = waiting.get(fd)
        if futs is None:
            futs = [fut]
            self._register(fd, direction, futs)
        else:
            futs.append(fut)
            self._sync(fd)  # the registration may be stale: see the module docstring
        try:
            await fut
        finally:
            if waiting.get(fd) is futs and fut in futs:
                # cancelled (or the task was torn down): leave, and
                # deregister if nobody else waits
                futs.remove(fut)
                if not futs:
                    del waiting[fd]
                    self._sync(fd)

    def wake(self, fd: int) -> None:
        readers = self.readers.pop(fd, None)
        writers = self.writers.pop(fd, None)
        if readers is None and writers is None:
            return
        self._sync(fd)  # nobody waits on fd now: this only removes
        for fut in (*(readers or ()), *(writers or ())):
            if not fut.done():
                fut.set_result(None)

    def notify_closing(self, fd: int) -> None:
        readers = self.readers.pop(fd, None)
        writers = self.writers.pop(fd, None)
        if self.loop.is_closed():
            return  # its registrations died with it
        if readers is not None:
            self.loop.remove_reader(fd)
        if writers is not None:
            self.loop.remove_writer(fd)
        for fut in (*(readers or ()), *(writers or ())):
            if not fut.done():
                fut.set_exception(_closed_error())

    def checkpoint(self) -> Awaitable[None]:
        return asyncio.sleep(0)

    # -- registrations -----------------------------------------------------

    def _register(self, fd: int, direction: int, futs: list[Future[None]]) -> None:
        """The first waiter in ``direction`` arrived: add our callback."""
        if direction == READ:
            other, kind = self.writers, "reader"
        else:
            other, kind = self.readers, "writer"
        selector_map = self.selector_map
        if selector_map is not None:
            key = selector_map.get(fd)
            if key is not None and key.data[0 if direction == READ else 1] is not None:
                raise _foreign_error(fd, kind)
        if fd in other:
            # the other direction is registered: register both afresh
            (self.readers if direction == READ else self.writers)[fd] = futs
            self._sync(fd)
        elif direction == READ:
            self.loop.add_reader(fd, self._on_readable, fd)  # raises for a bad fd
            self.readers[fd] = futs
        else:
            self.loop.add_writer(fd, self._on_writable, fd)
            self.writers[fd] = futs

    def _sync(self, fd: int) -> None:
        """Drop the loop's registrations of ``fd`` and make those still wanted.

        Off the common path (joins, both directions at once, the last waiter
        cancelled while the other direction waits).  A direction whose
        registration fails has its waiters woken with the error.
        """
        loop = self.loop
        for remove in (loop.remove_reader, loop.remove_writer):
            try:
                remove(fd)
            except OSError:
                pass  # the kernel forgot the fd already; the loop's map is clean
        for waiting, add, callback in (
            (self.readers, loop.add_reader, self._on_readable),
            (self.writers, loop.add_writer, self._on_writable),
        ):
            futs = waiting.get(fd)
            if futs is None:
                continue
            try:
                add(fd, callback, fd)
            except OSError as exc:
                del waiting[fd]
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(exc)

    # -- loop callbacks ----------------------------------------------------

    def _on_readable(self, fd: int) -> None:
        futs = self.readers.pop(fd, ())
        if fd in self.writers:
            self._sync(fd)
        else:
            self.loop.remove_reader(fd)
        for fut in futs:
            if not fut.done():
                fut.set_result(None)

    def _on_writable(self, fd: int) -> None:
        futs = self.writers.pop(fd, ())
        if fd in self.readers:
            self._sync(fd)
        else:
            self.loop.remove_writer(fd)
        for fut in futs:
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

    def reactor(self) -> _Reactor:
        loop = asyncio.get_running_loop()
        reactor = _reactors.get(loop)
        if reactor is None:
            reactor = _reactors[loop] = _Reactor(loop)
        return reactor

    def token(self) -> _Token:
        return _Token(asyncio.get_running_loop())

    def waiter(self) -> _Waiter:
        return _Waiter()

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def cancel_pending(self) -> bool:
        return False

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
