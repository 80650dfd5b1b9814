"""CapacityLimiter: how many calls may run in worker threads at once.

Theory of operation
-------------------
A limiter is shared by threads: tokens are freed by the worker that ran the
call (so an abandoned call holds its token until it really ends), and tasks
of several loops may wait on one limiter.  All state sits behind one
``threading.Lock``.

Two kinds of waiters queue in FIFO order:

* a *task* (``async with limiter``): granted by pushing its wake-up into its
  loop's sink, in the same batch as the result that freed the token;
* a *call* waiting to run: granted without involving any loop -- the worker
  that frees the token runs the next queued call itself, at once.  Under
  saturation (100 callers, 40 tokens) the limiter is the work queue, served
  by hot threads, and each call costs its task one wake-up, not two.

A waiter granted a token while its task is being cancelled passes the token
on.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from types import TracebackType
from typing import Protocol

from .._backends import Backend, Waiter, current_backend
from ._pool import POOL, Sink, current_sink, reset_after_fork

__all__ = ["DEFAULT_TOKENS", "CapacityLimiter", "Grantee", "Runnable"]

DEFAULT_TOKENS = 40


class Runnable(Protocol):
    """A queued call that was granted a token."""

    def run(self) -> None:
        """Run it, and whatever its token is passed on to (pool work item)."""


class Grantee(Protocol):
    """Something waiting in a limiter's queue."""

    granted: bool

    def grant(self) -> Runnable | None:
        """Called with the token: returns a call for the caller to run, or None."""


class _TaskEntry:
    __slots__ = ("granted", "sink", "waiter")

    def __init__(self, sink: Sink, waiter: Waiter) -> None:
        self.sink = sink
        self.waiter = waiter
        self.granted = False

    def grant(self) -> None:
        self.sink.push(self.waiter.wake)


class CapacityLimiter:
    """Bounds how many calls run in worker threads at once.

    Every :func:`~adapt.run_sync` / :func:`~adapt.asyncify` call holds one
    token while its function runs (an abandoned call keeps it until the
    function returns); callers beyond the limit queue in FIFO order.  A
    limiter is thread-safe: tasks of several loops, in several threads, may
    share it.  Without ``limiter=``, calls use ``CapacityLimiter.default()``
    (40 tokens, process-wide).

    ::

        pool = ThreadPoolExecutor(4); pool.submit(fetch, url)          # sync
        four = CapacityLimiter(4); await run_sync(fetch, url, limiter=four)

    ``async with limiter:`` borrows a token for a block of your own code.
    """

    __slots__ = ("__weakref__", "_borrowed", "_lock", "_total", "_waiters")

    def __init__(self, total_tokens: float) -> None:
        self._lock = threading.Lock()
        self._total: float = _check_total(total_tokens)
        self._borrowed = 0
        self._waiters: deque[Grantee] = deque()
        reset_after_fork(self)

    def reset_after_fork(self) -> None:
        """In a forked child: the tokens and waiters were the parent's."""
        self._lock = threading.Lock()
        self._borrowed = 0
        self._waiters = deque()

    @staticmethod
    def default() -> CapacityLimiter:
        """The process-wide limiter used when no ``limiter=`` is given."""
        return _DEFAULT

    @property
    def total_tokens(self) -> float:
        """How many tokens exist (an int, or ``math.inf``); settable."""
        return self._total

    @total_tokens.setter
    def total_tokens(self, value: float) -> None:
        total = _check_total(value)
        granted: list[Grantee] = []
        with self._lock:
            self._total = total
            while self._waiters and self._borrowed < total:
                entry = self._waiters.popleft()
                entry.granted = True
                self._borrowed += 1
                granted.append(entry)
        _grant_all(granted)

    @property
    def borrowed_tokens(self) -> int:
        """Tokens held right now."""
        return self._borrowed

    @property
    def available_tokens(self) -> float:
        """Tokens free right now."""
        return max(0, self._total - self._borrowed)

    @property
    def waiting(self) -> int:
        """Tasks and calls queued for a token."""
        return len(self._waiters)

    def __repr__(self) -> str:
        return (
            f"<CapacityLimiter borrowed={self._borrowed} total={self._total} "
            f"waiting={len(self._waiters)}>"
        )

    # -- internal: used by calls ------------------------------------------

    def try_borrow(self) -> bool:
        """Take a token if one is free and nobody queues; never waits."""
        with self._lock:
            if self._borrowed < self._total and not self._waiters:
                self._borrowed += 1
                return True
        return False

    def borrow_or_queue(self, entry: Grantee) -> bool:
        """Take a token (True), or queue ``entry`` to be granted one later."""
        with self._lock:
            if self._borrowed < self._total and not self._waiters:
                self._borrowed += 1
                return True
            self._waiters.append(entry)
        return False

    def retract(self, entry: Grantee) -> bool:
        """Take a queued ``entry`` back; False if it was granted already."""
        with self._lock:
            if entry.granted:
                return False
            self._waiters.remove(entry)
            return True

    def release_next(self) -> Runnable | None:
        """Give a token back; safe from any thread.

        The token goes to the first waiter.  If that is a queued call, the
        call is returned for the caller to run (in its own thread).
        """
        with self._lock:
            if self._borrowed <= 0:
                raise RuntimeError("CapacityLimiter released more often than acquired")
            if self._waiters and self._borrowed <= self._total:
                entry = self._waiters.popleft()
                entry.granted = True
            else:
                self._borrowed -= 1
                return None
        return entry.grant()

    # -- public -----------------------------------------------------------

    async def acquire(self) -> None:
        """Borrow a token, waiting in FIFO order; always a checkpoint.

        ::

            semaphore.acquire()                                         # sync
            await limiter.acquire()                                     # async
        """
        backend: Backend = current_backend()
        if self.try_borrow():
            try:
                await backend.checkpoint()
            except BaseException:
                self.release()
                raise
            return
        waiter = backend.waiter()
        entry = _TaskEntry(current_sink(backend), waiter)
        if self.borrow_or_queue(entry):
            await backend.checkpoint()  # raced with a release: got it at once
            return

        passed_on = False

        def abort() -> bool:
            nonlocal passed_on
            if not self.retract(entry):
                passed_on = True
                self.release()  # granted while being cancelled: pass it on
            return True

        try:
            await waiter.wait(abort)
        except BaseException:
            # granted in the loop iteration that cancelled us: pass it on
            if entry.granted and not passed_on:
                self.release()
            raise

    def acquire_nowait(self) -> None:
        """Borrow a token now or raise ``RuntimeError``."""
        if not self.try_borrow():
            raise RuntimeError("no CapacityLimiter token is available right now")

    def release(self) -> None:
        """Give back a token borrowed with :meth:`acquire`."""
        work = self.release_next()
        if work is not None:
            POOL.submit(work.run)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _check_total(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"total_tokens must be an int or math.inf, not {type(value).__name__}")
    if isinstance(value, float) and value != math.inf:
        raise TypeError(f"total_tokens must be an int or math.inf, not {value!r}")
    if value < 1:
        raise ValueError(f"total_tokens must be at least 1, not {value}")
    return value


def _grant_all(entries: list[Grantee]) -> None:
    for entry in entries:
        work = entry.grant()
        if work is not None:
            POOL.submit(work.run)


_DEFAULT = CapacityLimiter(DEFAULT_TOKENS)
