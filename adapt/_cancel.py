"""Protected clean-up on cancellation: ``async with on_cancel(cleanup): ...``.

Theory of operation
-------------------
A cancelled wait consumes nothing, but a protocol may be half-way through
an exchange: a query still runs on the server, a reply is still due.  The
clean-up that puts it back in step (send a cancel request and drain the
reply; drop the connection) must itself await, while the task that would
run it is being cancelled.  :class:`on_cancel` does this:

* **Only the loop's cancellation triggers it** (asyncio's
  ``CancelledError``, trio's ``Cancelled``, a group of nothing else).  A
  body that returns or raises anything else leaves without clean-up.
* **The clean-up runs in a task of its own** (``Backend.spawn``), outside
  every cancel scope of the cancelled task, with its own deadline.  The
  cancelled task parks on a :class:`~adapt._backends.Waiter` whose abort
  always says no (the same tool :func:`adapt.run_sync` uses for a call that
  cannot be stopped): it neither returns nor raises before the clean-up has
  ended, so the next line of the caller never runs concurrently with it.
* **The cancellation then propagates unchanged**: the exception the body
  raised leaves the block, in the scope that asked for it.  Nothing is
  re-delivered later (asyncio's ``uncancel(); cancel()`` would escape
  ``asyncio.timeout()``), so ``asyncio.timeout`` turns it into its
  ``TimeoutError`` and ``Task.cancelling()`` counts only the real requests.
  More cancellations that arrive during the clean-up (``task.cancel()``
  twice, an outer scope expiring) are absorbed by the same exception: the
  task is being cancelled already.  On trio and in anyio cancel scopes the
  scope stays cancelled anyway and catches the exception at its edge.
* **A failed or late clean-up** is cancelled at its deadline (its own
  ``finally`` blocks run: that is where it closes what it could not put
  back in step); its error is attached to the propagating cancellation as
  ``__context__``, so it shows in the traceback without replacing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from ._backends import current_backend
from ._backends._deadline import is_cancellation, within

__all__ = ["on_cancel"]


class on_cancel:
    """Run ``await cleanup()`` if the block is cancelled, protected from that
    cancellation, then let the cancellation go on::

        try:                                      # sync: an interrupted call
            cur.execute("SELECT pg_sleep(10)")
        except KeyboardInterrupt:
            conn.cancel()
            raise

        async with adapt.on_cancel(stop_query, timeout=5):   # async
            await db.execute("SELECT pg_sleep(10)")

    ``cleanup`` runs in a task of its own, outside the cancelled scope, for
    at most ``timeout`` seconds (then it is cancelled); the cancelled task
    waits for it, then the block raises the same cancellation it would have
    raised without ``on_cancel`` -- ``asyncio.timeout()`` still raises its
    ``TimeoutError``, a trio or anyio cancel scope still catches it.  An
    error of the clean-up (or its ``TimeoutError``) becomes the
    ``__context__`` of the cancellation.  Any other way out of the block
    runs nothing.

    Args:
        cleanup: an async function taking no arguments.
        timeout: seconds the clean-up may take (> 0).
    """

    __slots__ = ("_cleanup", "_timeout")

    def __init__(self, cleanup: Callable[[], Awaitable[object]], *, timeout: float = 5.0) -> None:
        if not callable(cleanup):
            raise TypeError(
                f"on_cancel() takes an async function to call, not {type(cleanup).__name__!r}"
                " (pass the function, not a coroutine: on_cancel(fn), not on_cancel(fn()))"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        self._cleanup = cleanup
        self._timeout = float(timeout)

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not is_cancellation(exc):
            return False
        failure = await _protected(self._cleanup, self._timeout)
        if (
            failure is not None
            and not isinstance(failure, Exception | BaseExceptionGroup)
            and not is_cancellation(failure)
        ):
            raise failure  # KeyboardInterrupt, SystemExit: never hidden
        if failure is not None and exc.__context__ is None:
            exc.__context__ = failure
        return False  # the cancellation propagates, unchanged

    def __repr__(self) -> str:
        return f"<adapt.on_cancel {self._cleanup!r}, timeout={self._timeout}>"


async def _protected(
    cleanup: Callable[[], Awaitable[object]], timeout: float
) -> BaseException | None:
    """Run ``cleanup`` in its own task with a deadline, and wait for it
    whatever cancellation arrives meanwhile; return its exception, if any."""
    backend = current_backend()
    waiter = backend.waiter()
    outcome: list[BaseException | None] = []

    async def run() -> None:
        try:
            await within(backend.name, timeout, cleanup)
        except BaseException as exc:  # handed to the cancelled task, never lost
            outcome.append(exc)
        else:
            outcome.append(None)
        waiter.wake()

    try:
        backend.spawn(run)
    except RuntimeError as exc:  # the loop accepts no new tasks: it is ending
        return exc
    try:
        await waiter.wait(lambda: False)  # nothing stops the clean-up early
    except BaseException as exc:
        # asyncio raises a cancellation that arrived during the clean-up once
        # it has ended: the task is being cancelled already (the body's
        # exception propagates); anything else is not ours to swallow
        if not is_cancellation(exc):
            raise
    return outcome[0] if outcome else None
