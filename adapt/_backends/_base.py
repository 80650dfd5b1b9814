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

* :class:`Reactor` -- readiness waits on one loop.  An fd is registered with
  the loop only while a task waits on it: the first waiter in a direction
  registers it, the readiness callback (or the last waiter leaving)
  removes it.  Nothing outlives the wait, so nothing must later be matched
  to "the same file" again (a closed fd's number is reused at once, and
  eventfd, timerfd, signalfd, inotify, epoll fds and pty masters all share
  one inode: there is no telling them apart).
* :class:`Waiter` -- a one-shot parking spot for the current task, woken from
  the loop thread; combined with :meth:`LoopToken.run_sync_soon` it is how a
  worker thread or a foreign callback hands a result to a task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

__all__ = ["Backend", "LoopToken", "Reactor", "Waiter"]


class Reactor(Protocol):
    """Readiness waits on one event loop (one reactor per loop or trio run)."""

    def current(self) -> bool:
        """Its loop runs this thread now (cheap: every wait asks)."""
        ...

    def alive(self) -> bool:
        """Its loop is running (in this thread or another)."""
        ...

    def wait(self, fd: int, direction: int) -> Awaitable[None]:
        """Wait until ``fd`` may be ready in ``direction``; loop thread only.

        Wake-ups may be spurious (callers retry their op).  Raises
        :class:`~adapt.ClosedResourceError` when :meth:`notify_closing` is
        called for ``fd`` while waiting, and the loop's error when ``fd``
        cannot be registered (a closed fd, another library's callback).
        Cancellation leaves no registration behind.
        """
        ...

    def wake(self, fd: int) -> None:
        """Wake every task waiting on ``fd``, in both directions, to retry.

        The waits return as if the fd were ready (a spurious wake-up); their
        registrations are dropped as after readiness.  Nothing is closed.
        Loop thread only.
        """
        ...

    def notify_closing(self, fd: int) -> None:
        """Wake every task waiting on ``fd`` with ClosedResourceError, deregister.

        Call it before closing the fd.  Loop thread, or a loop that is not
        running.
        """
        ...

    def checkpoint(self) -> Awaitable[None]:
        """Yield to this loop once (a schedule and cancel point)."""
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

    def reactor(self) -> Reactor:
        """The reactor of the running loop."""
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

    def cancel_pending(self) -> bool:
        """The current task's cancel scope is cancelled already (cheap).

        Work handed to a thread is not started then: :meth:`checkpoint`
        raises the cancellation instead, as ``trio.to_thread.run_sync``
        does.  Always False on asyncio, where a cancellation is a one-time
        request raised at the next await.
        """
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
