"""``iterate()``: an async iterator over a sync one, pulled in a thread.

Theory of operation
-------------------
``async for row in cursor`` cannot work, and ``await to_thread(next, it)``
per item pays a thread hand-off and a loop wake-up for every row: tens of
microseconds for an item that takes one to produce.

Here a pump (a pool job) calls ``next()`` back to back in a worker thread
and appends to a shared queue, up to ``buffer_size`` items ahead, then ends
(no thread is held while the consumer is behind).  The consumer swaps the
whole shared queue for its own in one locked step and then hands out items
with no lock and no hand-off at all; the swap restarts the pump, so the next
batch is produced while this one is consumed.

A task that finds nothing waits and is woken by the first item that
arrives: a slow source (one row per second) is not held back to fill a
batch.  A fast one batches by itself: items keep arriving while the woken
task waits for its loop turn, and it takes them all at once.

The sync iterator runs in one thread at a time, in a copy of the context of
the ``iterate()`` call.  Its exception is raised after the items produced
before it, and ends the iteration.  ``aclose()`` stops the pump and closes
the iterator (``generator.close()``) in the pump's thread once it stops --
never while ``next()`` runs there.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Iterable, Iterator
from threading import Lock
from typing import Generic, TypeVar

import sniffio

from .._backends import Waiter, current_backend
from .._resource import AsyncResource
from ._pool import POOL, Sink, current_sink
from ._reader import check_size
from ._threads import offload

__all__ = ["ThreadIterator", "iterate"]

T = TypeVar("T")

DEFAULT_ITEMS = 1024


class ThreadIterator(AsyncResource, Generic[T]):
    """Async iterator over a sync iterator, read ahead in a worker thread.

    Made by :func:`iterate`.  One task at a time may wait on it.
    """

    __slots__ = (
        "_closed",
        "_ctx",
        "_done",
        "_error",
        "_incoming",
        "_it",
        "_lock",
        "_max",
        "_pumping",
        "_ready",
        "_refill",
        "_sink",
        "_waiter",
    )

    def __init__(self, it: Iterator[T], buffer_size: int) -> None:
        self._it = it
        self._ctx = contextvars.copy_context()
        # the worker runs no async library, whatever the caller's context says
        self._ctx.run(sniffio.current_async_library_cvar.set, None)
        self._max = buffer_size
        self._refill = buffer_size // 2
        self._lock = Lock()
        self._incoming: deque[T] = deque()  # the pump appends (locked)
        self._ready: deque[T] = deque()  # the consumer's batch in hand (unlocked)
        self._pumping = False
        self._done = False
        self._error: BaseException | None = None
        self._closed = False
        self._waiter: Waiter | None = None
        self._sink: Sink | None = None

    def _ahead_locked(self) -> int:
        """Items produced and not yet handed out (the consumer only takes
        from ``_ready`` without the lock, so this never under-counts)."""
        return len(self._incoming) + len(self._ready)

    def _start_locked(self) -> bool:
        if self._pumping or self._done or self._closed or self._ahead_locked() >= self._max:
            return False
        self._pumping = True
        return True

    def start_failed(self, exc: BaseException) -> None:
        """No thread could be started for the pump: the iteration fails with ``exc``."""
        with self._lock:
            self._pumping = False
            self._done = True
            if self._error is None:
                self._error = exc
            waiter, sink = self._waiter, self._sink
            self._waiter = None
        if waiter is not None and sink is not None:
            sink.push(waiter.wake)

    def _pump(self) -> None:
        run, it, lock, limit = self._ctx.run, self._it, self._lock, self._max
        while True:
            done = False
            item: T | None = None
            try:
                item = run(next, it)
            except StopIteration:
                done = True
            except BaseException as exc:
                done = True
                tb = exc.__traceback__
                exc = exc.with_traceback(tb.tb_next if tb is not None else None)
                with lock:
                    self._error = exc
            with lock:
                if done:
                    self._done = True
                elif not self._closed:
                    self._incoming.append(item)  # type: ignore[arg-type]
                # _ahead_locked(), inlined: a call per item costs ~8% of the
                # item rate of iterate(range(n)) (measured)
                stop = done or self._closed or len(self._incoming) + len(self._ready) >= limit
                if stop:
                    self._pumping = False
                waiter, sink = self._waiter, self._sink
                self._waiter = None
                closing = stop and self._closed
            if closing:
                close = getattr(it, "close", None)
                if callable(close):
                    try:
                        run(close)
                    except BaseException as exc:
                        with lock:
                            self._error = exc
            if waiter is not None and sink is not None:
                sink.push(waiter.wake)
            if stop:
                return
            del item

    def __aiter__(self) -> ThreadIterator[T]:
        return self

    async def __anext__(self) -> T:
        ready = self._ready
        if ready:
            item = ready.popleft()
            if len(ready) == self._refill and not self._pumping:
                self._restart()  # half the batch in hand is left: produce more meanwhile
            return item
        if self._closed:
            raise StopAsyncIteration
        while True:
            with self._lock:
                if self._incoming:
                    self._ready, self._incoming = self._incoming, self._ready
                    ready = self._ready
                    start = self._start_locked()
                    waiter = None
                elif self._done:
                    error, self._error = self._error, None
                    if error is not None:
                        raise error
                    raise StopAsyncIteration
                else:
                    if self._waiter is not None:
                        raise RuntimeError("another task is already waiting on this iterator")
                    backend = current_backend()
                    waiter = self._waiter = backend.waiter()
                    self._sink = current_sink(backend)
                    start = self._start_locked()
            if start:
                POOL.submit(self._pump)
            if waiter is None:
                return ready.popleft()
            await self._park(waiter)
            if self._closed:
                raise StopAsyncIteration

    def _restart(self) -> None:
        with self._lock:
            start = self._start_locked()
        if start:
            POOL.submit(self._pump)

    async def _park(self, waiter: Waiter) -> None:
        def abort() -> bool:
            with self._lock:
                if self._waiter is waiter:
                    self._waiter = None
            return True  # an item that arrives meanwhile stays queued

        await waiter.wait(abort)

    async def aclose(self) -> None:
        """Stop reading ahead and close the sync iterator if it has
        ``close()``.  Idempotent; a ``next()`` in progress is waited for."""
        backend = current_backend()
        with self._lock:
            already = self._closed
            self._closed = True
            self._incoming.clear()
            self._ready.clear()
            wake = None
            if self._waiter is not None and self._sink is not None:
                wake = (self._sink, self._waiter)
                self._waiter = None
            pumping = self._pumping
            waiter = None
            if not already and pumping:
                waiter = self._waiter = backend.waiter()
                self._sink = current_sink(backend)
        if wake is not None:
            wake[0].push(wake[1].wake)
        if already:
            await backend.checkpoint()
        elif waiter is not None:
            await self._park(waiter)  # the pump closes the iterator when it stops
        else:
            close = getattr(self._it, "close", None)
            if callable(close):
                await offload(self._ctx.run, (close,), {}, None, False)
            else:
                await backend.checkpoint()


def iterate(iterable: Iterable[T], *, buffer_size: int = DEFAULT_ITEMS) -> ThreadIterator[T]:
    """Iterate a blocking sync iterable asynchronously; ``next()`` runs in a
    worker thread, up to ``buffer_size`` items ahead.

    ::

        for row in cursor: handle(row)                                  # sync
        async for row in iterate(cursor): handle(row)                   # async

    Use ``async with iterate(gen) as rows:`` to close a generator (run its
    ``finally`` blocks) when leaving the loop early.
    """
    check_size(buffer_size, "buffer_size")
    if hasattr(iterable, "__aiter__") and not hasattr(iterable, "__iter__"):
        raise TypeError("iterate() takes a sync iterable; this one is async: use `async for`")
    try:
        it = iter(iterable)
    except TypeError:
        raise TypeError(f"iterate() takes an iterable, not {type(iterable).__name__}") from None
    return ThreadIterator(it, buffer_size)
