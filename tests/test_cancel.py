"""``on_cancel``: protected clean-up that runs when a block is cancelled.

Each test checks three things: the clean-up ran to its end (although the
task running the block was being cancelled), the cancellation surfaced in the
scope that asked for it, and nothing strikes afterwards.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from adapt import on_cancel

ASYNCIO = pytest.mark.backends("asyncio", "uvloop")


class Cleanup:
    """A clean-up that takes ``seconds`` and records how it ended."""

    def __init__(self, seconds: float = 0.1, fail: BaseException | None = None) -> None:
        self.seconds = seconds
        self.fail = fail
        self.started = 0
        self.finished = 0
        self.cut_short = 0

    async def __call__(self) -> None:
        self.started += 1
        try:
            await anyio.sleep(self.seconds)
        except BaseException:
            self.cut_short += 1
            raise
        if self.fail is not None:
            raise self.fail
        self.finished += 1


async def _cancelled_body(cleanup: Cleanup, *, timeout: float = 5.0) -> None:
    async with on_cancel(cleanup, timeout=timeout):
        await anyio.sleep(10)
    raise AssertionError("the body was not cancelled")  # pragma: no cover


async def _nothing_strikes_later() -> None:
    for _ in range(3):
        await anyio.sleep(0.005)  # a re-delivered cancellation would hit here
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return  # trio
    assert task is not None
    assert task.cancelling() == 0


async def test_anyio_scope_waits_for_the_cleanup(backend: str) -> None:
    cleanup = Cleanup(0.2)
    start = time.monotonic()
    with anyio.move_on_after(0.05) as scope:
        await _cancelled_body(cleanup)
    assert scope.cancelled_caught
    assert cleanup.finished == 1  # it ran, protected, to its end
    assert time.monotonic() - start >= 0.2  # and the block waited for it
    await _nothing_strikes_later()


async def test_no_cleanup_without_cancellation(backend: str) -> None:
    cleanup = Cleanup(0.0)
    async with on_cancel(cleanup):
        await anyio.sleep(0)
    with pytest.raises(KeyError):
        async with on_cancel(cleanup):
            raise KeyError("not a cancellation")
    assert cleanup.started == 0


async def test_deadline_cancels_the_cleanup(backend: str) -> None:
    cleanup = Cleanup(10)
    start = time.monotonic()
    with anyio.move_on_after(0.05):
        await _cancelled_body(cleanup, timeout=0.1)
    assert time.monotonic() - start < 2
    assert cleanup.cut_short == 1
    assert cleanup.finished == 0
    await _nothing_strikes_later()


async def test_cleanup_error_is_the_cancellations_context(backend: str) -> None:
    cleanup = Cleanup(0.0, fail=ValueError("drain failed"))
    caught: BaseException | None = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await _cancelled_body(cleanup)
        except BaseException as exc:  # the loop's cancellation
            caught = exc
            raise
    assert caught is not None
    assert isinstance(caught.__context__, ValueError)
    await _nothing_strikes_later()


@pytest.mark.backends("trio")
async def test_trio_cancel_scope(backend: str) -> None:
    import trio

    cleanup = Cleanup(0.1)
    with trio.move_on_after(0.05) as scope:
        await _cancelled_body(cleanup)
    assert scope.cancelled_caught
    assert cleanup.finished == 1
    # an outer scope cancelled during the clean-up does not cut it short
    cleanup = Cleanup(0.2)
    with trio.move_on_after(0.15) as outer:
        with trio.move_on_after(0.05):
            await _cancelled_body(cleanup)
        await trio.sleep(10)
    assert outer.cancelled_caught
    assert cleanup.finished == 1


@ASYNCIO
async def test_asyncio_timeout_raises_timeout_error_in_scope(backend: str) -> None:
    cleanup = Cleanup(0.2)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await _cancelled_body(cleanup)
    assert cleanup.finished == 1
    assert time.monotonic() - start >= 0.2
    await _nothing_strikes_later()


@ASYNCIO
async def test_asyncio_nested_timeouts_expiring_during_the_cleanup(backend: str) -> None:
    cleanup = Cleanup(0.3)
    outer = asyncio.timeout(0.15)

    async def nested() -> None:
        async with outer, asyncio.timeout(0.05):
            await _cancelled_body(cleanup)

    with pytest.raises(TimeoutError):
        await nested()
    assert outer.expired()  # the outer scope's TimeoutError, counted right
    assert cleanup.finished == 1
    await _nothing_strikes_later()


@ASYNCIO
async def test_asyncio_wait_for(backend: str) -> None:
    cleanup = Cleanup(0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_cancelled_body(cleanup), 0.05)
    assert cleanup.finished == 1
    await _nothing_strikes_later()


@ASYNCIO
async def test_asyncio_task_cancel_once_and_twice(backend: str) -> None:
    for cancels in (1, 2, 3):
        cleanup = Cleanup(0.1)
        task = asyncio.ensure_future(_cancelled_body(cleanup))
        await asyncio.sleep(0.02)
        for _ in range(cancels):
            task.cancel()
            await asyncio.sleep(0.02)  # the later ones land during the clean-up
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleanup.finished == 1
        assert cleanup.started == 1
        assert task.cancelling() == cancels
    await _nothing_strikes_later()


@ASYNCIO
async def test_asyncio_cancel_message_is_unchanged(backend: str) -> None:
    task = asyncio.ensure_future(_cancelled_body(Cleanup(0.0)))
    await asyncio.sleep(0.02)
    task.cancel("stop now")
    with pytest.raises(asyncio.CancelledError, match="stop now"):
        await task


@pytest.mark.backends("asyncio")
async def test_anyio_scope_over_asyncio_counts_right(backend: str) -> None:
    cleanup = Cleanup(0.1)
    with anyio.move_on_after(0.05) as scope:
        await _cancelled_body(cleanup)
    assert scope.cancelled_caught
    assert cleanup.finished == 1

    async def in_both() -> None:
        async with asyncio.timeout(0.05):
            with anyio.CancelScope():
                await _cancelled_body(Cleanup(0.05))

    with pytest.raises(TimeoutError):
        await in_both()
    await _nothing_strikes_later()


async def test_bad_arguments(backend: str) -> None:
    async def coro_fn() -> None:
        pass

    coro = coro_fn()
    with pytest.raises(TypeError, match="pass the function, not a coroutine"):
        on_cancel(coro)  # type: ignore[arg-type]
    coro.close()
    with pytest.raises(ValueError, match="> 0"):
        on_cancel(coro_fn, timeout=0)
    with pytest.raises(TypeError, match="number of seconds"):
        on_cancel(coro_fn, timeout="5")  # type: ignore[arg-type]
