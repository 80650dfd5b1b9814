"""The worker pool and the per-loop completion sinks.

Theory of operation
-------------------
What goes wrong in the usual design (``loop.run_in_executor``, anyio's and
trio's ``to_thread``): every call pays for a chain of future objects on both
sides, a queue hand-off to a worker, and one thread-safe loop wake-up (a
write to the loop's self-pipe, then a loop iteration) per result.  With many
short calls in flight the loop spends its time being woken, and dozens of
threads fight for the GIL to run a few microseconds of work each.

What this module does instead:

* **Hand-off**: one process-wide FIFO of work.  A worker keeps taking work
  until the FIFO is empty, then parks on its own lock in a LIFO stack (the
  most recently used thread is woken first; the cold ones at the bottom time
  out).  At most one woken worker is *searching* at a time; a worker that
  takes work while more is queued wakes the next one.  A burst of short
  calls is run by a few hot threads; a burst of blocking calls still gets one
  thread each, a wake-up apart.
* **Completion batching**: each loop (per thread and backend) has a *sink*,
  a lock-guarded list of finished work.  A worker appends to it; only the
  first completion of a batch schedules the drain with
  ``LoopToken.run_sync_soon``.  Results that finish while the loop is busy
  ride along with that one wake-up.
* **Spin, then park**: a worker that finished a call yields the CPU (and
  the GIL) a few dozen times before parking.  A task that awaits one call
  after another queues its next call within that window, and it is taken
  without a futex wake-up: one thread switch per call instead of two.
* **Idle threads exit** after :data:`IDLE_TIMEOUT` (0.25 s) without work.  The
  pool is shared by all loops and outlives each of them; a quarter second
  after a loop's last call, none of its threads is left.  Workers are daemon
  threads, so an abandoned call that never returns cannot hang interpreter
  exit.
* **A thread that cannot start** (the process is at its thread or memory
  limit) fails the calls that were waiting for it: each work item's owner
  has a ``start_failed(exc)`` method, called with a clear error, and the
  pool forgets the thread it counted as searching.  Calls already running
  and later ones are not affected.
* **fork**: the child gets a fresh, empty pool (its parent's threads do not
  exist there); the parent is untouched.
* **Bounded**: every call holds a :class:`~adapt.CapacityLimiter` token
  while it runs, and a stream or ``iterate()`` pump uses at most one thread
  per stream, so the number of threads follows the limiters.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import sniffio

from .._backends import Backend, LoopToken, current_backend

__all__ = [
    "IDLE_TIMEOUT",
    "POOL",
    "Sink",
    "current_loop",
    "current_sink",
    "finishing",
    "in_worker",
    "local",
    "pinned_here",
    "report",
    "reset_after_fork",
]

#: seconds an idle worker waits for work before it exits
IDLE_TIMEOUT = 0.25

#: times a worker that just finished a call yields before it parks
SPINS = 50

_yield = os.sched_yield


class _Local(threading.local):
    worker: bool = False
    #: the pool worker running in this thread, if any
    pool_worker: _Worker | None = None
    #: the pinned executor this thread serves, if any
    pinned: object = None
    #: one sink per backend name, for loops that run in this thread
    sinks: dict[str, Sink] | None = None


local = _Local()


def in_worker() -> bool:
    """True in a thread of the pool or a pinned thread."""
    return local.worker


def pinned_here() -> object:
    """The pinned executor served by this thread, if any."""
    return local.pinned


# -- delivering results to a loop ---------------------------------------------


class Sink:
    """Finished work for one loop, drained with one wake-up per batch."""

    __slots__ = ("backend", "dead", "items", "lock", "scheduled", "token")

    def __init__(self, backend: Backend, token: LoopToken) -> None:
        self.backend = backend
        self.token = token
        self.lock = threading.Lock()
        self.items: list[Callable[[], object]] = []
        self.scheduled = False
        self.dead = False

    def push(self, item: Callable[[], object]) -> None:
        """Run ``item()`` in the loop thread soon; safe from any thread.

        Dropped silently when the loop has ended (its tasks are gone).
        """
        with self.lock:
            if self.dead:
                return
            self.items.append(item)
            if self.scheduled:
                return
            self.scheduled = True
        try:
            self.token.run_sync_soon(self._drain)
        except RuntimeError:
            with self.lock:
                self.dead = True
                self.items = []

    def _drain(self) -> None:
        with self.lock:
            items = self.items
            self.items = []
            self.scheduled = False
        for item in items:
            try:
                item()
            except BaseException as exc:
                report(exc, "adapt completion")


def current_sink(backend: Backend) -> Sink:
    """The sink of the loop running in this thread (loop thread only)."""
    global _last
    sink = _last  # fast path: the loop that asked last time, asking again
    if sink is not None and sink.backend is backend and sink.token.is_current():
        return sink
    sinks = local.sinks
    if sinks is None:
        sinks = local.sinks = {}
    sink = sinks.get(backend.name)
    if sink is None or not sink.token.is_current():
        sink = sinks[backend.name] = Sink(backend, backend.token())
    _last = sink
    return sink


_last: Sink | None = None


def current_loop() -> Sink:
    """The running loop's sink, whose ``backend`` is ``current_backend()``.

    Asking sniffio costs about as much as the rest of a call's hand-off, so
    the loop that asked last is reused when it still runs in this thread and
    sniffio's own markers (trio's thread-local name, a guest run's context
    variable; neither is set under asyncio) name the same library.
    """
    sink = _last
    if sink is not None and sink.token.is_current():
        name = sniffio.thread_local.name
        if name is None:
            name = _sniffio_cvar.get()
        if (name or "asyncio") == sink.backend.name:
            return sink
    return current_sink(current_backend())


_sniffio_cvar = sniffio.current_async_library_cvar


# -- the pool -----------------------------------------------------------------


def report(exc: BaseException, what: str) -> None:
    """Hand an exception nobody can receive to ``sys.unraisablehook``."""
    args = SimpleNamespace(
        exc_type=type(exc),
        exc_value=exc,
        exc_traceback=exc.__traceback__,
        err_msg=what,
        object=None,
    )
    sys.unraisablehook(cast("sys.UnraisableHookArgs", args))


class _Worker:
    """One pool thread; parks on its own lock when there is no work."""

    __slots__ = ("park", "pool", "searching")

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.park = threading.Lock()
        self.park.acquire()
        #: counted in ``pool.searching``: ready to take queued work (the
        #: worker's own thread changes it, under the pool lock)
        self.searching = True  # whoever started or woke us counted us

    def main(self) -> None:
        local.worker = True
        local.pool_worker = self
        pool = self.pool
        lock = pool.lock
        queue = pool.queue
        park = self.park
        spins = 0
        while True:
            helper: _Worker | None = _NOBODY
            with lock:
                if queue:
                    work = queue.popleft()
                    if self.searching:
                        self.searching = False
                        pool.searching -= 1
                    # more queued work and nobody looking for it: wake a
                    # helper, in case this call blocks for a long time
                    helper = pool.wake_locked() if queue and not pool.searching else _NOBODY
                elif spins:
                    # just finished a call: stay awake a moment (as a searching
                    # worker, so nobody is woken for what we would take)
                    work = None
                    if not self.searching:
                        self.searching = True
                        pool.searching += 1
                else:
                    work = None
                    if self.searching:
                        self.searching = False
                        pool.searching -= 1
                    pool.idle.append(self)
            if work is None and spins:
                spins -= 1
                _yield()  # lets the loop thread take the GIL and queue more
                continue
            if work is None:
                if not park.acquire(timeout=IDLE_TIMEOUT):
                    with lock:
                        try:
                            pool.idle.remove(self)
                        except ValueError:
                            pass  # woken just now: fall through to the wake-up
                        else:
                            return
                    park.acquire()
                self.searching = True  # the waker counted us
                continue
            spins = SPINS
            if helper is not _NOBODY:
                pool.start(helper, helping=True)
            try:
                work()
            except BaseException as exc:  # work items report their own errors
                report(exc, "adapt worker")
            del work


def finishing() -> None:
    """The pool worker in this thread is about to hand over its last result.

    Count it as searching from now on, as it will be once its work item
    returns: the hand-over wakes the loop, which may submit the next call
    before this thread gets the GIL back -- and with nobody searching, that
    call would start or wake another thread.  Elsewhere a no-op.
    """
    worker = local.pool_worker
    if worker is not None and not worker.searching:
        with worker.pool.lock:
            worker.searching = True
            worker.pool.searching += 1


#: "no helper to wake" (``wake_locked`` returns None for "start a new thread")
_NOBODY: Any = object()


class _Pool:
    """Process-wide worker threads sharing one FIFO of work.

    A worker takes work until the queue is empty, then parks (LIFO).  At most
    one woken worker is *searching* at a time; a worker that takes work while
    more is queued wakes the next one, so a burst of short calls is run by a
    few hot threads, and a burst of blocking calls still gets one thread each.
    """

    __slots__ = ("idle", "lock", "queue", "searching")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: deque[Callable[[], None]] = deque()
        self.idle: list[_Worker] = []
        self.searching = 0

    def wake_locked(self) -> _Worker | None:
        """Claim a parked worker (None: start a new one); lock held."""
        self.searching += 1
        return self.idle.pop() if self.idle else None

    def start(self, worker: _Worker | None, helping: bool = False) -> None:
        """Wake ``worker``, or start a new one; ``helping``: called by a worker,
        which takes the queued work itself if no helper can start."""
        if worker is not None:
            worker.park.release()
            return
        worker = _Worker(self)
        name = f"adapt-worker-{next(_numbers)}"
        try:
            threading.Thread(target=worker.main, name=name, daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": EAGAIN, ENOMEM
            self._start_failed(exc, helping)

    def _start_failed(self, cause: RuntimeError, helping: bool) -> None:
        """The thread counted as searching does not exist: fail what it was for."""
        with self.lock:
            self.searching -= 1
            # a searching worker takes queued work; without one, it needed us
            stranded = [] if self.searching or helping else list(self.queue)
            if stranded:
                self.queue.clear()
        for work in stranded:
            err = RuntimeError(
                f"adapt could not start a worker thread ({cause}): the process is at its "
                "thread or memory limit (ulimit -u, a cgroup's pids.max, ulimit -v); "
                "the call did not run"
            )
            err.__cause__ = cause
            fail = getattr(getattr(work, "__self__", None), "start_failed", None)
            if callable(fail):
                fail(err)
            else:
                report(err, "adapt pool")

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work()`` in a worker thread soon (it must not raise).

        ``work`` is a bound method whose object has ``start_failed(exc)``: if
        no thread can be started to run it, that is called instead (in this
        thread, or in the worker that tried to start a helper).
        """
        with self.lock:
            self.queue.append(work)
            if self.searching:
                return
            worker = self.wake_locked()
        self.start(worker)

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's threads and queued work are not here."""
        self.lock = threading.Lock()
        self.queue = deque()
        self.idle = []
        self.searching = 0


POOL = _Pool()

#: numbers for worker thread names (``adapt-worker-3``)
_numbers = itertools.count(1)

#: objects with a ``reset_after_fork()`` method (limiters, pinned threads)
_fork_resets: weakref.WeakSet[Any] = weakref.WeakSet()


def reset_after_fork(obj: object) -> None:
    """Have ``obj.reset_after_fork()`` called in every forked child."""
    _fork_resets.add(obj)


def _after_fork_in_child() -> None:
    global _last
    POOL.reset_after_fork()
    _last = None
    # the forking thread may have been a worker
    local.worker, local.pool_worker, local.pinned, local.sinks = False, None, None, None
    for obj in list(_fork_resets):
        obj.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
