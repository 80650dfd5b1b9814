"""Cancellation of offload and bridge waits surfaces in the scope that asked for it.

On asyncio a cancellation is delivered once: a wait that returned its value
and re-cancelled the task later would escape ``asyncio.timeout()`` and hit an
unrelated await.  These tests check that the CancelledError is raised inside
the scope (``asyncio.timeout`` turns it into TimeoutError there), that nothing
strikes afterwards, and that what the wait was about is not lost.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapt import CapacityLimiter, asyncify, channel, oneshot, reader, run_sync

pytestmark = pytest.mark.backends("asyncio", "uvloop")


async def _nothing_strikes_later() -> None:
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    for _ in range(3):
        await asyncio.sleep(0.005)  # a re-delivered cancellation would hit here


async def test_run_sync_timeout_raises_in_scope_after_the_call(backend: str) -> None:
    finished = threading.Event()

    def slow() -> str:
        time.sleep(0.3)
        finished.set()
        return "result"

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await run_sync(slow)
    assert finished.is_set()  # the call never outlives the scope
    assert time.monotonic() - start >= 0.3
    await _nothing_strikes_later()


async def test_run_sync_exception_is_the_cancellations_context(backend: str) -> None:
    def slow_fail() -> None:
        time.sleep(0.2)
        raise ValueError("late")

    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.05):
            await run_sync(slow_fail)
    cancelled = info.value.__cause__
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(cancelled.__context__, ValueError)
    await _nothing_strikes_later()


@asyncify
def _slow_square(x: int) -> int:
    time.sleep(0.2)
    return x * x


async def test_asyncify_timeout_and_wait_for(backend: str) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await _slow_square(3)
    await _nothing_strikes_later()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_slow_square(4), 0.05)
    assert time.monotonic() - start >= 0.2  # default policy: the call ran to its end
    await _nothing_strikes_later()


async def test_task_cancel_ends_the_task_once(backend: str) -> None:
    started = threading.Event()

    def slow() -> int:
        started.set()
        time.sleep(0.2)
        return 1

    after: list[str] = []

    async def body() -> None:
        await run_sync(slow)
        after.append("returned")  # pragma: no cover - must not run

    task = asyncio.ensure_future(body())
    await run_sync(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []


async def test_abandon_returns_at_once_in_scope(backend: str) -> None:
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await run_sync(release.wait, 5, abandon_on_cancel=True)
    assert time.monotonic() - start < 1
    release.set()
    await _nothing_strikes_later()


# -- an outcome and the timeout in one loop iteration ---------------------------


async def _collide(wait: Callable[[], Awaitable[object]], deliver: Callable[[], None]) -> None:
    """Await ``wait()`` in an ``asyncio.timeout`` that expires in the loop
    iteration in which ``deliver()`` hands the wait its outcome."""
    loop = asyncio.get_running_loop()

    async def scoped() -> None:
        async with asyncio.timeout(None) as scope:

            def both() -> None:
                scope.reschedule(loop.time() - 1)  # the expiry runs first...
                deliver()  # ...then the task wakes with the outcome

            loop.call_soon(both)
            await wait()

    with pytest.raises(TimeoutError):
        await scoped()
    await _nothing_strikes_later()


async def _expiring(wait: Callable[[], Awaitable[object]], box: list[Any]) -> None:
    """Await ``wait()`` in an ``asyncio.timeout`` put in ``box`` for others to expire."""
    async with asyncio.timeout(None) as scope:
        box.append(scope)
        await wait()


async def test_oneshot_value_and_timeout_together(backend: str) -> None:
    callback, result = oneshot[int]()
    await _collide(lambda: result, lambda: callback(7))
    assert await result == 7  # the value stays for the next await


async def test_limiter_grant_and_timeout_together(backend: str) -> None:
    limiter = CapacityLimiter(1)
    await limiter.acquire()
    await _collide(limiter.acquire, limiter.release)
    assert limiter.borrowed_tokens == 0  # the token was passed on, not kept
    await limiter.acquire()
    limiter.release()


async def test_channel_item_and_timeout_together(backend: str) -> None:
    send, stream = channel[int](maxsize=4)
    it = aiter(stream)
    await _collide(lambda: anext(it), lambda: send(5))
    assert await anext(it) == 5  # the item stays queued
    send.close()
    await stream.aclose()


async def test_run_sync_result_and_timeout_together(backend: str) -> None:
    loop = asyncio.get_running_loop()
    box: list[Any] = []

    def expire_then_return() -> int:
        # the expiry is queued before the result: both reach the loop together
        loop.call_soon_threadsafe(box[0].reschedule, loop.time() - 1)
        return 1

    with pytest.raises(TimeoutError):
        await _expiring(lambda: run_sync(expire_then_return), box)
    await _nothing_strikes_later()


class _ExpiringFile(io.BytesIO):
    """A file whose first read expires the caller's timeout before returning."""

    def __init__(self, data: bytes, expire: Callable[[], None]) -> None:
        super().__init__(data)
        self.expire: Callable[[], None] | None = expire

    def read(self, size: int | None = -1, /) -> bytes:
        expire, self.expire = self.expire, None
        if expire is not None:
            expire()
        return super().read(size)


async def test_reader_data_and_timeout_together(backend: str) -> None:
    loop = asyncio.get_running_loop()
    box: list[Any] = []

    def expire() -> None:
        loop.call_soon_threadsafe(box[0].reschedule, loop.time() - 1)

    async with reader(_ExpiringFile(b"abc", expire)) as r:
        with pytest.raises(TimeoutError):
            await _expiring(lambda: r.read(3), box)
        await _nothing_strikes_later()
        assert await r.read(3) == b"abc"  # the data stayed buffered


async def test_task_cancel_is_not_taken_for_an_anyio_scope_cancel(backend: str) -> None:
    import anyio

    started = threading.Event()

    def slow() -> int:
        started.set()
        time.sleep(0.2)
        return 1

    after: list[str] = []

    async def body() -> None:
        with anyio.move_on_after(0.1):  # expires while the call runs, after the cancel
            await run_sync(slow)
        after.append("went on")  # pragma: no cover - the task was cancelled

    task = asyncio.ensure_future(body())
    await run_sync(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []
