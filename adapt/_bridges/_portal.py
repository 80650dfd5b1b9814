"""The reverse direction: from sync code and callback APIs into the loop.

Theory of operation
-------------------
``oneshot()`` and ``channel()`` carry values from callbacks into tasks.
The reverse is needed as often: a callback-style framework calls *us*
(``handler(request, respond)``, in its own thread) and we want to answer
with async code; or a plain worker thread wants to run one async call in
the loop and wait for it.  A :class:`Portal` is a handle on one running
loop, made in async code and used from anywhere.

What goes wrong, and what we do about it:

* **A task must be started in the loop thread.**  ``start()`` hands a small
  job to the loop through the token, and the job starts a background task
  there (the backend's ``spawn``).  From the loop thread itself it starts
  at once.
* **Every outcome must reach the callback, exactly once.**  The task
  delivers a value, an exception, or -- when it is cancelled, by the
  returned cancel function or because the loop is shutting down -- a
  ``concurrent.futures.CancelledError``, the exception sync code knows for
  "cancelled" (the loop's own cancellation exceptions mean something else
  in a thread).  If the loop ends before the job could even start, the job
  is discarded with the loop, and its finalizer delivers the cancellation.
  A job spawned in the loop's very last iteration (``asyncio.run`` shutting
  down) gets a task that never runs and is never discarded; so a thread
  blocked in :meth:`Portal.call` also checks every 0.1 s that the loop still
  takes callbacks, and gets the cancellation when it does not.  It always
  wakes up.
* **The callbacks run in the loop thread.**  They must be quick and must not
  block.  An exception they raise has nowhere to go: it is logged (logger
  ``adapt``) rather than allowed to crash the loop.
* **Blocking the loop on itself deadlocks.**  ``call()`` from the loop
  thread raises ``RuntimeError`` instead.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, TypeVarTuple, cast

from .._backends import Backend, LoopToken, current_backend

__all__ = ["Portal"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

logger = logging.getLogger("adapt")

_PASS_THROUGH: tuple[type[BaseException], ...] = (
    Exception,
    KeyboardInterrupt,
    SystemExit,
    BaseExceptionGroup,
)


def _as_outcome_error(exc: BaseException) -> BaseException:
    """The exception a sync callback receives for a task that raised ``exc``."""
    if isinstance(exc, _PASS_THROUGH):
        return exc
    # the loop's cancellation (asyncio.CancelledError, trio.Cancelled) or
    # GeneratorExit from a task discarded with its loop
    err = concurrent.futures.CancelledError("the task was cancelled before it finished")
    err.__cause__ = exc
    return err


def _loop_ended() -> RuntimeError:
    return RuntimeError("the event loop of this portal has ended")


class _Job(Generic[T]):
    """One ``start()``: spawn in the loop, run, deliver once."""

    __slots__ = ("__weakref__", "afn", "args", "backend", "cancel_task", "cancelled", "on", "token")

    def __init__(
        self,
        backend: Backend,
        token: LoopToken,
        afn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        on: tuple[Callable[[T], object], Callable[[BaseException], object]] | None,
    ) -> None:
        self.backend = backend
        self.token = token
        self.afn = afn
        self.args = args
        #: the callbacks; None once delivered
        self.on = on
        self.cancelled = False
        self.cancel_task: Callable[[], None] | None = None

    def spawn(self) -> None:  # loop thread
        if self.cancelled:
            self.deliver(None, concurrent.futures.CancelledError("cancelled before it started"))
            return
        try:
            self.cancel_task = self.backend.spawn(self.run)
        except RuntimeError as exc:  # the loop takes no new tasks: it is ending
            err = concurrent.futures.CancelledError("the event loop is shutting down")
            err.__cause__ = exc
            self.deliver(None, err)

    async def run(self) -> None:
        try:
            value = await self.afn(*self.args)
        except Exception as exc:
            self.deliver(None, exc)
        except BaseException as exc:
            self.deliver(None, _as_outcome_error(exc))
            raise
        else:
            self.deliver(value, None)

    def deliver(self, value: T | None, exc: BaseException | None) -> None:
        on = self.on
        if on is None:
            return
        self.on = None
        then, on_error = on
        try:
            if exc is None:
                then(cast(T, value))
            else:
                on_error(exc)
        except Exception:
            logger.exception("exception in a callback of Portal.start(), ignored")

    def cancel(self) -> None:  # loop thread
        self.cancelled = True
        if self.cancel_task is not None:
            self.cancel_task()

    def __del__(self) -> None:
        # discarded before it could run: the loop ended with the job queued
        if self.on is not None:
            self.deliver(None, concurrent.futures.CancelledError("the event loop ended first"))


class _Box:
    """A sync thread's parking spot for one outcome."""

    __slots__ = ("lock", "outcome")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.outcome: tuple[Any, BaseException | None] | None = None

    def set_value(self, value: object) -> None:
        self.outcome = (value, None)
        self.lock.release()

    def set_error(self, exc: BaseException) -> None:
        self.outcome = (None, exc)
        self.lock.release()

    def wait(self, timeout: float | None, token: LoopToken) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = _PROBE if deadline is None else min(_PROBE, deadline - time.monotonic())
            if self.lock.acquire(timeout=max(step, 0)):
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no result within {timeout} s")
            if not _alive(token):
                if self.lock.acquire(blocking=False):
                    break  # answered just before the end
                # the loop closed with our job queued or its task never run
                # (spawned in the loop's last iteration): nothing will answer
                raise concurrent.futures.CancelledError("the event loop ended first")
        assert self.outcome is not None
        value, exc = self.outcome
        if exc is not None:
            try:
                raise exc
            finally:
                del exc, self.outcome  # no reference cycle through the traceback
        return value


class _SyncCall:
    """One ``call_sync()``, queued in the loop: run once, deliver to the box."""

    __slots__ = ("args", "box", "fn")

    def __init__(self, box: _Box, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.box: _Box | None = box
        self.fn = fn
        self.args = args

    def __call__(self) -> None:
        box, self.box = self.box, None
        if box is None:
            return
        try:
            value = self.fn(*self.args)
        except BaseException as exc:
            box.set_error(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            box.set_value(value)

    def __del__(self) -> None:
        if self.box is not None:  # the loop ended with this call still queued
            self.box.set_error(concurrent.futures.CancelledError("the event loop ended first"))


#: seconds between checks that the loop of a thread waiting in call() still runs
_PROBE = 0.1


def _noop() -> None:
    pass


def _alive(token: LoopToken) -> bool:
    """False once the loop has ended (its token refuses new callbacks)."""
    try:
        token.run_sync_soon(_noop)
    except RuntimeError:
        return False
    return True


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")


class Portal:
    """A handle on the running event loop, for other threads and callback APIs.

    Make it in async code; use it from any thread::

        portal = Portal()                     # in a task: binds the running loop

        # a worker thread runs one async call in the loop and waits for it
        value = asyncio.run(fetch(url))       # sync: a loop of its own
        value = portal.call(fetch, url)       # async twin: the app's loop

        # a callback API gets its answer from async code
        def on_request(request, respond):     # called by the library
            portal.start(handle, request, then=respond, on_error=log_error)

    Raises ``RuntimeError`` when made outside a running event loop, and from
    its methods once that loop has ended.
    """

    __slots__ = ("_backend", "_token")

    def __init__(self) -> None:
        self._backend = current_backend()
        self._token = self._backend.token()

    def start(
        self,
        afn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        then: Callable[[T], object],
        on_error: Callable[[BaseException], object],
    ) -> Callable[[], None]:
        """Run ``await afn(*args)`` in the loop; deliver the outcome to a callback.

        Callable from any thread.  ``then(value)`` or ``on_error(exc)`` is
        called once, in the loop thread; a cancelled task delivers
        ``concurrent.futures.CancelledError``.  Returns a function that
        cancels the task, callable from any thread (a no-op once finished)::

            lib.request(key, on_done=respond)                   # sync

            portal.start(fetch, key, then=respond, on_error=fail)   # async twin
        """
        if not callable(afn):
            raise TypeError(f"start() takes an async function, not {type(afn).__name__!r}")
        if not callable(then) or not callable(on_error):
            raise TypeError("then and on_error must be callables")
        job: _Job[T] = _Job(self._backend, self._token, afn, args, (then, on_error))
        token = self._token
        if token.is_current():
            job.spawn()
        else:
            try:
                token.run_sync_soon(job.spawn)
            except RuntimeError:
                job.on = None  # nothing was started, and the caller learns it now
                raise _loop_ended() from None
        ref = weakref.ref(job)
        del job  # only the loop keeps it alive: dropped with the loop, it says so

        def cancel() -> None:
            job = ref()
            if job is None:
                return
            if token.is_current():
                job.cancel()
            else:
                try:
                    token.run_sync_soon(job.cancel)
                except RuntimeError:
                    pass  # the loop has ended, and cancelled the task itself

        return cancel

    def call(
        self,
        afn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        timeout: float | None = None,
    ) -> T:
        """Run ``await afn(*args)`` in the loop from another thread; wait; return.

        Raises what ``afn`` raised, ``concurrent.futures.CancelledError`` if
        the task was cancelled (the loop is shutting down), ``TimeoutError``
        after ``timeout`` seconds (the task is cancelled then), and
        ``RuntimeError`` in the loop's own thread, which would deadlock::

            value = fetch_sync(url)                 # sync
            value = portal.call(fetch, url)         # async twin, from a thread
        """
        _check_timeout(timeout)
        if self._token.is_current():
            raise RuntimeError(
                "Portal.call() in the event loop's own thread would wait for itself; "
                "await the function instead"
            )
        box = _Box()
        cancel = self.start(afn, *args, then=box.set_value, on_error=box.set_error)
        try:
            value: T = box.wait(timeout, self._token)
        except TimeoutError:
            cancel()
            raise
        return value

    def call_sync(
        self,
        fn: Callable[[*Ts], T],
        *args: *Ts,
        timeout: float | None = None,
    ) -> T:
        """Run ``fn(*args)`` in the loop thread; wait; return its result.

        For touching state that belongs to the loop from another thread.  In
        the loop thread itself, ``fn`` is simply called.  ``TimeoutError``
        after ``timeout`` seconds (``fn`` may still run later)::

            counter.bump()                          # sync, same thread
            portal.call_sync(counter.bump)          # from any thread
        """
        _check_timeout(timeout)
        if not callable(fn):
            raise TypeError(f"call_sync() takes a callable, not {type(fn).__name__!r}")
        if self._token.is_current():
            return fn(*args)
        box = _Box()
        call = _SyncCall(box, fn, args)
        try:
            self._token.run_sync_soon(call)
        except RuntimeError:
            call.box = None
            raise _loop_ended() from None
        del call  # only the loop holds it: discarded with the loop, it says so
        value: T = box.wait(timeout, self._token)
        return value

    def __repr__(self) -> str:
        return f"<adapt.Portal on {self._backend.name}>"
