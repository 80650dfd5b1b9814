"""One offloaded call: :func:`run_sync`, and the pinned (dedicated) thread.

Theory of operation
-------------------
A call is a :class:`Job`: the function, its arguments, a copy of the
caller's context, the loop's sink and the task's waiter.  The task takes a
limiter token (or queues the job on the limiter: the worker that frees a
token runs it), hands the job to the pool, and parks on its waiter.  The
worker runs the function, pushes the outcome into the sink (one loop
wake-up per batch of results) and frees the token.

* **Cancellation** (default): once a job runs it cannot be stopped, so the
  task keeps waiting until it ends (``Waiter.wait(abort)`` with an abort
  that says no).  On trio (and inside anyio cancel scopes) the task then
  receives the outcome and the scope cancels it at its next checkpoint; on
  asyncio the await raises the CancelledError then, inside the scope that
  asked for it, and the outcome is dropped.  With
  ``abandon_on_cancel=True`` the task returns at once and the outcome is
  dropped when it arrives.  A job still queued (on a limiter, or behind
  another call on a pinned thread) is taken back: it never runs.
* **Nesting**: a call made from inside a worker thread (a nested event loop,
  an asyncified function awaited there) runs inline in that thread; waiting
  for another worker could deadlock a full pool.  A call made on behalf of a
  worker from the loop (``from_thread`` helpers carry the worker's context)
  does not take a second token from a limiter its chain already holds.
* **Context** is copied into the call, as ``asyncio.to_thread`` does.
* ``StopIteration`` escaping the function becomes ``RuntimeError``: it cannot
  cross into a coroutine (``asyncio.to_thread`` hangs on it).  A function
  that returns a coroutine is an error (it is async: await it instead).
* **Tracebacks** start at the user's function: the frames of this module
  are cut from the head of the traceback before the exception is re-raised.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import Any, TypeVar, TypeVarTuple, Unpack

import sniffio

from .._backends import Waiter, current_backend
from ._limiter import CapacityLimiter, Runnable
from ._pool import (
    POOL,
    Sink,
    current_loop,
    current_sink,
    finishing,
    local,
    report,
    reset_after_fork,
)

__all__ = ["Job", "Pinned", "offload", "run_sync"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_DEFAULT = CapacityLimiter.default()

#: limiters whose tokens the current call chain already holds
_HELD: contextvars.ContextVar[tuple[CapacityLimiter, ...]] = contextvars.ContextVar(
    "adapt_held_limiters", default=()
)


_SNIFFIO = sniffio.current_async_library_cvar


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def check_result(fn: object, value: object) -> object:
    """Reject a coroutine returned by a function run in a thread."""
    if type(value) is CoroutineType:
        value.close()
        raise TypeError(
            f"{_name(fn)} returned a coroutine: it is an async function; "
            "await it directly instead of running it in a thread"
        )
    return value


def stop_iteration_error(fn: object, exc: StopIteration) -> RuntimeError:
    err = RuntimeError(f"{_name(fn)} raised StopIteration, which cannot cross into a coroutine")
    err.__cause__ = exc
    return err


def _invoke(job: Job) -> object:
    if job.mark is not None:
        _HELD.set(job.mark)
    if _SNIFFIO.get() is not None:
        _SNIFFIO.set(None)  # the thread runs no async library (trio sets this)
    return job.fn(*job.args, **job.kwargs)


def _clean(exc: BaseException) -> BaseException:
    """Cut this module's frames from the head of the traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code in _OWN_CODE:
        tb = tb.tb_next
    return exc.with_traceback(tb)


class Job:
    """One call, run by a pool worker or a pinned thread."""

    __slots__ = (
        "abandon",
        "args",
        "ctx",
        "exc",
        "fn",
        "granted",
        "kwargs",
        "limiter",
        "mark",
        "pinned",
        "queued",
        "sink",
        "value",
        "waiter",
    )

    def __init__(
        self,
        fn: Callable[..., object],
        args: tuple[object, ...],
        kwargs: dict[str, object],
        sink: Sink,
        waiter: Waiter,
        abandon: bool,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.ctx = contextvars.copy_context()
        self.sink = sink
        self.waiter = waiter
        self.abandon = abandon
        self.limiter: CapacityLimiter | None = None
        self.mark: tuple[CapacityLimiter, ...] | None = None
        self.queued = False
        self.granted = False
        self.pinned: Pinned | None = None
        self.value: object = None
        self.exc: BaseException | None = None

    # -- worker side ------------------------------------------------------

    def run(self) -> None:
        """Pool work item: run this call, then whatever its token unblocks."""
        work: Runnable | None = self
        while isinstance(work, Job):
            work = work.run_one()
        if work is not None:
            work.run()

    def run_one(self) -> Runnable | None:
        """Call, hand the outcome to the loop, free the token."""
        try:
            self.value = check_result(self.fn, self.ctx.run(_invoke, self))
        except StopIteration as exc:
            self.exc = stop_iteration_error(self.fn, _clean(exc))  # type: ignore[arg-type]
        except BaseException as exc:
            self.exc = _clean(exc)
        # free the token first, so that it is free when the task resumes; run
        # the call it unblocks only after handing over this outcome
        limiter = self.limiter
        after = None if limiter is None else limiter.release_next()
        if after is None:
            finishing()  # before the hand-over wakes the loop: see there
        self.sink.push(self.deliver)
        return after

    def grant(self) -> Job:
        """Limiter side: the token is ours; the releaser runs us."""
        return self

    def start_failed(self, exc: BaseException) -> None:
        """No thread could be started to run us: fail the call, free the token."""
        self.exc = exc
        limiter = self.limiter
        after = None if limiter is None else limiter.release_next()
        self.sink.push(self.deliver)
        if after is not None:
            POOL.submit(after.run)  # the call our token went to

    # -- loop side --------------------------------------------------------

    def deliver(self) -> None:
        exc = self.exc
        self.exc = None  # no cycle through the frames that raised it
        self.waiter.wake(self.value, exc)

    def abort(self) -> bool:
        """The task is being cancelled: may it stop waiting?"""
        if self.queued and self.limiter is not None and self.limiter.retract(self):
            return True  # never ran, never will
        if self.pinned is not None and self.pinned.retract(self):
            return True
        return self.abandon


_OWN_CODE = frozenset({Job.run_one.__code__, _invoke.__code__})


def run_inline(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    """A call made from inside a worker thread runs right there."""
    try:
        return check_result(fn, contextvars.copy_context().run(fn, *args, **kwargs))  # type: ignore[return-value]
    except StopIteration as exc:
        raise stop_iteration_error(fn, exc) from exc


def _submit(
    sink: Sink,
    fn: Callable[..., object],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    limiter: CapacityLimiter | None,
    abandon_on_cancel: bool,
) -> Job:
    """Hand a call to the pool (or queue it on its limiter); loop thread."""
    if limiter is not None and not isinstance(limiter, CapacityLimiter):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"limiter must be an adapt.CapacityLimiter (or None), not {type(limiter).__name__}:"
            " make one with CapacityLimiter(n)"
        )
    if type(abandon_on_cancel) is not bool:
        raise TypeError(f"abandon_on_cancel must be a bool, not {abandon_on_cancel!r}")
    job = Job(fn, args, kwargs, sink, sink.backend.waiter(), abandon_on_cancel)
    lim = _DEFAULT if limiter is None else limiter
    held = _HELD.get()
    if lim in held:
        POOL.submit(job.run)  # the chain holds a token of this limiter already
    else:
        job.mark = (*held, lim)
        job.limiter = lim
        if lim.borrow_or_queue(job):
            POOL.submit(job.run)
        else:
            job.queued = True  # the worker that frees a token runs it
    return job


async def offload(
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    limiter: CapacityLimiter | None,
    abandon_on_cancel: bool,
) -> R:
    """Run ``fn(*args, **kwargs)`` in a pool worker (see the module doc)."""
    if local.worker:
        await current_backend().checkpoint()
        return run_inline(fn, args, kwargs)
    sink = current_loop()
    if sink.backend.cancel_pending():
        await sink.backend.checkpoint()  # raises: no call starts in a cancelled scope
    job = _submit(sink, fn, args, kwargs, limiter, abandon_on_cancel)
    result: R = await job.waiter.wait(job.abort)
    return result


async def run_sync(
    fn: Callable[[Unpack[Ts]], R],
    *args: *Ts,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> R:
    """Run a blocking function in a worker thread; return its result.

    ::

        digest = hashlib.file_digest(f, "sha256")                       # sync
        digest = await run_sync(hashlib.file_digest, f, "sha256")       # async

    ``limiter``: the :class:`CapacityLimiter` to take a token from (default
    ``CapacityLimiter.default()``, 40 tokens).

    Cancellation: by default a call that started runs to its end and the
    task waits for it.  On trio (and in anyio cancel scopes) the task then
    receives its result (or exception) and is cancelled at its next
    checkpoint in the scope; on asyncio the await raises ``CancelledError``
    when the call has ended (``asyncio.timeout`` turns it into
    ``TimeoutError``) and the result is discarded.  With
    ``abandon_on_cancel=True`` the task returns at once and the outcome is
    discarded when the call ends.  A call still waiting for a token is
    always cancelled at once, and on trio a call made in a scope that is
    cancelled already does not start (as with ``trio.to_thread.run_sync``).

    Context variables are copied into the call.  ``StopIteration`` from
    ``fn`` becomes ``RuntimeError``.  Called from inside a worker thread (a
    nested event loop), ``fn`` runs inline there.  For keyword arguments use
    ``functools.partial``.
    """
    if not callable(fn):
        raise TypeError(f"run_sync() needs a callable, not {type(fn).__name__}")
    # offload(), inlined: one coroutine less per call
    if local.worker:
        await current_backend().checkpoint()
        return run_inline(fn, args, {})
    sink = current_loop()
    if sink.backend.cancel_pending():
        await sink.backend.checkpoint()  # raises: no call starts in a cancelled scope
    job = _submit(sink, fn, args, {}, limiter, abandon_on_cancel)
    result: R = await job.waiter.wait(job.abort)
    return result


# -- pinned threads -----------------------------------------------------------


class Pinned:
    """A dedicated thread that runs calls one at a time, in order.

    For objects that are not thread-safe or check the thread that created
    them (``sqlite3``).  Started on the first call; :meth:`stop` ends it
    after the calls already queued.
    """

    __slots__ = ("__weakref__", "cond", "name", "queue", "stopping", "thread")

    def __init__(self, name: str) -> None:
        self.name = name
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[Job] = deque()
        self.thread: threading.Thread | None = None
        self.stopping = False
        reset_after_fork(self)

    def reset_after_fork(self) -> None:
        """In a forked child: the thread and the parent's queued calls are gone."""
        self.cond = threading.Condition(threading.Lock())
        self.queue = deque()
        self.thread = None

    def submit(self, job: Job) -> None:
        job.pinned = self
        with self.cond:
            if self.stopping:
                raise RuntimeError(f"the dedicated thread of {self.name} was closed")
            self.queue.append(job)
            if self.thread is not None:
                self.cond.notify()
                return
            thread = threading.Thread(
                target=self._main, name=f"adapt-pinned {self.name}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError as exc:  # "can't start new thread"
                self.queue.remove(job)
                raise RuntimeError(
                    f"adapt could not start the dedicated thread of {self.name} ({exc}): "
                    "the process is at its thread or memory limit; the call did not run"
                ) from exc
            self.thread = thread

    def retract(self, job: Job) -> bool:
        with self.cond:
            try:
                self.queue.remove(job)
            except ValueError:
                return False
            return True

    def stop(self) -> None:
        """End the thread once the queued calls are done (idempotent)."""
        with self.cond:
            self.stopping = True
            self.cond.notify()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _main(self) -> None:
        local.worker = True
        local.pinned = self
        cond = self.cond
        queue = self.queue
        while True:
            with cond:
                while not queue and not self.stopping:
                    cond.wait()
                if not queue:
                    return
                job = queue.popleft()
            try:
                job.run_one()
            except BaseException as exc:
                report(exc, f"adapt pinned {self.name}")
            del job


async def offload_pinned(
    pinned: Pinned,
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    abandon_on_cancel: bool,
) -> R:
    """Run ``fn(*args, **kwargs)`` in ``pinned``'s thread, after earlier calls."""
    backend = current_backend()
    if local.pinned is pinned:
        await backend.checkpoint()
        return run_inline(fn, args, kwargs)
    if backend.cancel_pending():
        await backend.checkpoint()  # raises: no call starts in a cancelled scope
    waiter = backend.waiter()
    job = Job(fn, args, kwargs, current_sink(backend), waiter, abandon_on_cancel)
    pinned.submit(job)
    result: R = await waiter.wait(job.abort)
    return result
