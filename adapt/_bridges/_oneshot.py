"""One-shot callback bridges: ``oneshot()`` (push) and ``deferred()`` (pull).

Theory of operation
-------------------
A one-shot callback is the other end of a future: ``callback(value)`` may run
in any thread (a library's network thread, a GUI thread, a finalizer), while
``await result`` runs in a task of some event loop.  What goes wrong:

* **Lost wake-ups.**  The producer stores the value and looks for a parked
  task; the task looks for a value and then parks.  Done naively, each can
  miss the other and the task sleeps forever.
* **Locks in finalizers.**  "Garbage-collected without being called" means
  a ``__del__``, which runs whenever the collector feels like it, in any
  thread -- including a thread that is inside our own critical section.
  A finalizer that takes a lock can deadlock the process.
* **Re-entering the loop.**  A finalizer may run in the loop thread in the
  middle of the scheduler's own bookkeeping; waking a task from there
  directly is unsafe.  It may also run after the loop has ended.

The solution uses no lock at all.  The two ends share one list, and every
step that must not interleave with another is a single list operation
(``remove`` / ``append`` / ``insert``, atomic in CPython, and still on
free-threaded builds, which lock a list for the duration of a call):

* The list starts with a claim marker.  Whoever removes it (atomically, so
  only one caller can) resolves the result, and appends the outcome; every
  later call finds no marker and returns quietly, so a late or repeated
  call never raises in the producer's thread.
* Publishing is ordered like Dekker's algorithm: the producer appends the
  outcome, *then* looks for a parked waiter at the front; the task puts its
  waiter at the front, *then* looks for an outcome at the back.  At least
  one of them sees the other; if both do, the waiter is woken once more than
  needed, which is harmless (wakes after the first are ignored).
* The waiter is always woken in its loop thread: directly when the producer
  already is there (the same-thread fast path), otherwise through the loop
  token.  A finalizer always goes through the token, which is safe from any
  thread; once the loop is gone the token raises and nobody is left to wake.

The result never refers to its callback, so dropping the callback is
noticed however long the result lives.  Every round trip allocates as few
objects as possible: on a busy loop, the garbage collector's work per
allocation is a visible part of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from threading import get_ident
from typing import Any, Generic, TypeVar, cast, overload

from .._backends import LoopToken, Waiter, current_backend

__all__ = ["Callback", "CallbackDropped", "Result", "deferred", "oneshot"]

T = TypeVar("T")


class CallbackDropped(Exception):
    """The callback end of a bridge went away without delivering anything.

    Raised by ``await result`` when the :class:`Callback` of a
    :func:`oneshot` was garbage-collected or :meth:`~Callback.release`\\ d
    without being called, and at the end of a :func:`channel` stream whose
    sender was dropped before ``close()``::

        callback, result = oneshot()
        lib.start(on_done=callback)    # ...and the library forgets it
        await result                   # CallbackDropped
    """


def check_exception(exc: object) -> BaseException:
    """``exc`` if it is an exception instance, else a clear TypeError."""
    if isinstance(exc, BaseException):
        return exc
    hint = " (raise an instance: call the class)" if isinstance(exc, type) else ""
    raise TypeError(f"fail() takes an exception instance, not {type(exc).__name__!r}{hint}")


#: the claim marker in ``Result._state``; whoever removes it resolves the result
_UNCLAIMED = object()


class _Parked:
    """A waiting task's parking spot; calling it withdraws it (the abort)."""

    __slots__ = ("state", "thread", "token", "waiter")

    def __init__(self, state: list[object], waiter: Waiter, token: LoopToken) -> None:
        self.state = state
        self.waiter = waiter
        self.token = token
        self.thread = get_ident()

    def __call__(self) -> bool:
        try:
            self.state.remove(self)
        except ValueError:
            pass  # a wake-up is on its way; it will be ignored
        return True  # nothing is lost: the outcome stays in the result


def _resolve(state: list[Any], value: object, exc: BaseException | None, finalizer: bool) -> None:
    """Resolve the result whose ``_state`` is ``state``; the first call wins."""
    try:
        state.remove(_UNCLAIMED)
    except ValueError:
        return  # late or repeated: ignored, never raises in the producer
    state.append((value, exc))  # the outcome: always the last element from now on
    if len(state) > 1:
        parked = state[0]
        if type(parked) is _Parked:
            try:
                state.remove(parked)
            except ValueError:
                return  # the waiting task gave up meanwhile
            token = parked.token
            # the thread id is a cheap "certainly not the loop thread" test
            if not finalizer and parked.thread == get_ident() and token.is_current():
                parked.waiter.wake(value, exc)
            else:
                try:
                    token.run_sync_soon(parked.waiter.wake, value, exc)
                except RuntimeError:
                    pass  # the loop has ended, and the waiting task with it


class Callback(Generic[T]):
    """The producer end of :func:`oneshot` (made by it): call it once, from any thread.

    ``callback(value)`` resolves the result, ``callback.fail(exc)`` makes
    ``await result`` raise ``exc``, and ``callback.release()`` gives it up
    (``await result`` raises :class:`CallbackDropped`, as it does when the
    callback is garbage-collected uncalled).  Only the first of these counts;
    later calls are ignored and never raise.  A ``Callback[None]`` may also
    be called with no argument.
    """

    __slots__ = ("__weakref__", "_state")

    def __init__(self, state: list[Any]) -> None:
        self._state = state

    @overload
    def __call__(self: Callback[None], /) -> None: ...

    @overload
    def __call__(self, value: T, /) -> None: ...

    def __call__(self: Callback[Any], value: Any = None, /) -> None:
        _resolve(self._state, value, None, False)

    def fail(self, exc: BaseException) -> None:
        """Make ``await result`` raise ``exc`` (an exception instance)."""
        _resolve(self._state, None, check_exception(exc), False)

    def release(self) -> None:
        """Give the callback up uncalled: ``await result`` raises CallbackDropped."""
        _resolve(self._state, None, CallbackDropped("the callback was released uncalled"), False)

    @property
    def done(self) -> bool:
        """True once called, failed or released (later calls are ignored)."""
        return _UNCLAIMED not in self._state

    def __del__(self) -> None:
        state = self._state
        if _UNCLAIMED in state:
            dropped = CallbackDropped("the callback was garbage-collected uncalled")
            _resolve(state, None, dropped, True)

    def __repr__(self) -> str:
        return f"<adapt.Callback {'done' if self.done else 'pending'}>"


class Result(Generic[T]):
    """The awaiting end of :func:`oneshot` (made by it).

    ``await result`` waits for the callback and returns its value (or raises
    what was passed to ``fail``, or :class:`CallbackDropped`).  One task at a
    time may wait; a cancelled wait loses nothing, and once resolved the
    result may be awaited again for the same outcome.
    """

    __slots__ = ("_state",)

    def __init__(self, state: list[Any]) -> None:
        # One list holds everything the two ends share (the result never
        # refers to its callback, so that dropping the callback is noticed):
        # ``_UNCLAIMED`` until resolved, then the ``(value, exc)`` outcome as
        # the last element; a waiting task's :class:`_Parked` entry, if any,
        # comes first.  Each step is one atomic list operation.
        self._state = state

    def done(self) -> bool:
        """True once the callback was called, failed, released or dropped."""
        return _UNCLAIMED not in self._state

    def __repr__(self) -> str:
        return f"<adapt.Result {'done' if self.done() else 'pending'}>"

    def _outcome(self) -> tuple[T | None, BaseException | None] | None:
        state = self._state
        last = state[-1] if state else None
        return last if type(last) is tuple else None  # pyright: ignore[reportUnknownVariableType]

    def __await__(self) -> Generator[Any, None, T]:
        # a generator rather than a coroutine: one layer less on every await
        backend = current_backend()
        outcome = self._outcome()
        if outcome is None:
            state = self._state
            if state and type(state[0]) is _Parked:
                raise RuntimeError("another task is already awaiting this result")
            parked = _Parked(state, backend.waiter(), backend.token())
            state.insert(0, parked)
            outcome = self._outcome()  # re-read after parking (Dekker's ordering)
            if outcome is None:
                value: T = yield from parked.waiter.wait(parked).__await__()
                return value
            parked()  # withdraw it: the outcome arrived meanwhile
        yield from backend.checkpoint().__await__()
        value_, exc = outcome
        if exc is not None:
            raise exc
        return cast(T, value_)


def _pair() -> tuple[Callback[Any], Result[Any]]:
    state: list[Any] = [_UNCLAIMED]
    return Callback(state), Result(state)


class oneshot(tuple["Callback[T]", "Result[T]"]):
    """A one-shot callback and the awaitable it resolves (a push pipe).

    Hand ``callback`` to a callback-style API and await ``result``; the
    callback may be called from any thread::

        lib.start(on_done=print)                  # sync: the value goes to a callback

        callback, result = oneshot[int]()         # async twin
        lib.start(on_done=callback)
        value = await result

    Write ``oneshot[T]()`` to tell a type checker what the value is.  Call
    ``callback.fail(exc)`` to raise ``exc`` in the awaiting task instead.  If
    the callback is garbage-collected or released uncalled, ``await result``
    raises :class:`CallbackDropped`.  ``oneshot()`` needs no running loop;
    the result binds to the loop of the task that awaits it.
    """

    __slots__ = ()

    def __new__(cls) -> tuple[Callback[T], Result[T]]:  # type: ignore[misc]
        state: list[Any] = [_UNCLAIMED]
        return Callback(state), Result(state)


class deferred(Generic[T]):
    """An awaitable that makes its request only when first awaited (a pull pipe).

    ``start(callback)`` is called in the awaiting task on the first
    ``await``, with the :class:`Callback` of a fresh :func:`oneshot`; like
    ``new Promise(resolve => ...)`` but lazy::

        lib.fetch(key, on_done=handle)                            # sync

        value = await deferred(lambda done: lib.fetch(key, on_done=done))

    Awaiting it again gives the same outcome without calling ``start``
    again.  If ``start`` raises, the exception propagates from ``await``.
    """

    __slots__ = ("_result", "_start")

    def __init__(self, start: Callable[[Callback[T]], object]) -> None:
        if not callable(start):
            raise TypeError(f"deferred() takes a callable, not {type(start).__name__!r}")
        self._start: Callable[[Callback[T]], object] | None = start
        self._result: Result[T] | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    async def _wait(self) -> T:
        result = self._result
        if result is None:
            start = self._start
            assert start is not None
            callback, result = _pair()
            self._start, self._result = None, result
            try:
                start(callback)
            except BaseException as exc:
                callback.fail(exc)
                raise
            # the callback must live only where ``start`` put it, or a request
            # that drops it would hang here instead of raising CallbackDropped
            del callback
        return await result

    def __repr__(self) -> str:
        state = "not started" if self._result is None else repr(self._result)
        return f"<adapt.deferred {state}>"
