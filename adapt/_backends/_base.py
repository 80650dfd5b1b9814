"""The backend seam: everything adapt needs from an event loop.

Theory of operation
-------------------
adapt never talks to asyncio or trio outside ``adapt/_backends``.  The core
(``Async``), the thread offload and the callback bridges see a running event
loop only through the small :class:`Backend` protocol below, implemented once
for asyncio (which covers uvloop: it only uses public loop methods) and once
for trio.  The backend is chosen at await time with sniffio and imported
lazily, so ``import adapt`` never imports trio.

Two kinds of state live in a backend:

* :class:`FdWatch` -- readiness of one fd on one loop, shared by every
  ``Async`` that wraps that fd there (asyncio allows one reader callback per
  fd, so two wrappers must share it).  It owns the waiter lists and the
  loop registration, and implements the close order.
* :class:`Waiter` -- a one-shot parking spot for the current task, woken from
  the loop thread; combined with :meth:`LoopToken.run_sync_soon` it is how a
  worker thread or a foreign callback hands a result to a task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

__all__ = ["Backend", "FdWatch", "LoopToken", "Waiter"]


class FdWatch(Protocol):
    """Readiness of one fd on one event loop."""

    #: ``(st_dev, st_ino)`` of the file the fd referred to when first watched
    ident: tuple[int, int]

    closed: bool
    #: live wrappers bound to this watch; the last one to go closes it
    users: int

    def current(self) -> bool:
        """Not closed, and belongs to the running loop (cheap: every wait asks)."""
        ...

    def alive(self) -> bool:
        """Not closed, and its loop can still run (else a wrapper may rebind)."""
        ...

    def arm(self, direction: int) -> Awaitable[None]:
        """Register the calling task as a waiter; await the result to wait.

        The awaitable completes when the fd may be ready in ``direction`` (or
        spuriously: callers always retry their operation), and raises
        :class:`~adapt.ClosedResourceError` when the watch is closed.
        Raises ``ClosedResourceError`` at once if the watch is already closed.
        """
        ...

    def settle(
        self, direction: int, waiter: Awaitable[None], exc: BaseException | None
    ) -> BaseException | None:
        """Called after every await of an armed waiter, with how it ended.

        Forgets a waiter whose wait failed (cancelled, closed), hands
        leadership on (trio), and returns the exception the caller should
        raise -- ``exc`` itself or adapt's equivalent of a backend exception
        -- or None when the caller should just retry.
        """
        ...

    def checkpoint(self) -> Awaitable[None]:
        """Yield to this watch's loop once (a schedule and cancel point)."""
        ...

    def close(self) -> None:
        """Close order: wake all waiters with ClosedResourceError, then deregister.

        Idempotent.  Does not close the fd: the caller does that afterwards.
        Loop thread only.
        """
        ...

    def release_soon(self) -> None:
        """Close the watch soon, in its loop, if it still has no users.

        Safe from any thread and from a finalizer (which may run in the
        middle of the loop's own bookkeeping, so nothing happens at once).
        """
        ...


class LoopToken(Protocol):
    """A handle on a running loop that other threads may use."""

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule ``fn(*args)`` in the loop thread; safe from any thread.

        Raises ``RuntimeError`` when the loop is no longer running.
        """
        ...

    def is_current(self) -> bool:
        """True when called from this loop's thread while it runs."""
        ...


class Waiter(Protocol):
    """One task's one-shot parking spot, woken from the loop thread."""

    async def wait(self, abort: Callable[[], bool] | None = None) -> Any:
        """Park the current task until :meth:`wake`; return the woken value.

        On cancellation ``abort()`` is called: if it returns True (or abort is
        None) the cancellation proceeds; if False the task keeps waiting for
        :meth:`wake`.  Then, on trio (level-triggered cancellation), it
        receives the value and its scope cancels it at its next checkpoint;
        on asyncio the cancellation is raised here once the value arrived
        (never re-delivered later, which would escape ``asyncio.timeout()``).
        A value and a cancellation that arrive in one loop iteration raise the
        cancellation without calling ``abort()``: a caller whose wake-up
        transferred something (a limiter token) takes it back on the exception.
        """
        ...

    def wake(self, value: object = None, exc: BaseException | None = None) -> None:
        """Resume the parked task (loop thread only).  Later calls are ignored."""
        ...


class Backend(Protocol):
    """What adapt needs from an event loop library."""

    name: str

    def watch(self, fd: int, ident: tuple[int, int]) -> FdWatch:
        """The (new or shared) watch of ``fd`` on the running loop."""
        ...

    def token(self) -> LoopToken:
        """A thread-safe handle on the running loop."""
        ...

    def waiter(self) -> Waiter:
        """A new parking spot for the current task."""
        ...

    async def checkpoint(self) -> None:
        """Yield to the loop once (and let a pending cancellation in)."""
        ...

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> Callable[[], None]:
        """Run ``await fn()`` as a new background task of the running loop.

        Loop thread only (a task, or a callback scheduled with
        :meth:`LoopToken.run_sync_soon`).  ``fn`` always starts, and must
        handle its own exceptions: one escaping it is a bug (asyncio logs it,
        trio ends the run).  Returns a function that cancels the task (loop
        thread only, idempotent); the cancellation is raised inside ``fn``.
        Raises ``RuntimeError`` when the loop accepts no new tasks.
        """
        ...
