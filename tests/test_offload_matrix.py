"""The offload and bridge cancellation matrix.

Every wait of the thread offload (``run_sync``, ``@asyncify``, a pinned
object) under both cancellation policies, and every bridge wait (limiter,
``oneshot``, ``channel``, ``reader()``, ``iterate()``), cancelled by every
way a loop offers -- ``asyncio.timeout``, ``wait_for``, ``task.cancel()``,
an anyio cancel scope on asyncio; a trio cancel scope and an anyio one on
trio -- on asyncio, asyncio in debug mode, uvloop and trio.

In every case the cancellation surfaces inside the scope that asked for it
(never "completed"), nothing strikes at a later await, a call that was not
abandoned has ended when the scope exits, an abandoned one has not, and the
bridge still delivers what arrives afterwards.  The loop stopped or closed
while a call runs is at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import trio
import uvloop

import adapt
from adapt import CapacityLimiter, Portal, run_sync

LOOPS = ("asyncio", "asyncio-debug", "uvloop", "trio")
KINDS = {
    "asyncio": ("timeout", "wait_for", "task-cancel", "anyio-scope"),
    "trio": ("trio-scope", "anyio-scope"),
}
CASES = [(loop, kind) for loop in LOOPS for kind in KINDS["trio" if loop == "trio" else "asyncio"]]


def _run(loop: str, fn: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await fn()

    if loop == "trio":
        trio.run(main)
        return
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(debug=loop == "asyncio-debug", loop_factory=factory) as runner:
        runner.run(main())


async def _under(kind: str, op: Callable[[], Awaitable[object]], delay: float) -> str:
    """Await ``op()`` under ``kind`` of cancellation after ``delay``; say how it ended."""
    if kind == "timeout":
        try:
            async with asyncio.timeout(delay):
                await op()
        except TimeoutError:
            return "timed out"
        return "completed"
    if kind == "wait_for":
        try:
            await asyncio.wait_for(op(), delay)
        except TimeoutError:
            return "timed out"
        return "completed"
    if kind == "task-cancel":

        async def body() -> None:
            await op()

        task = asyncio.ensure_future(body())
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "completed"
    scope_cm = anyio.move_on_after(delay) if kind == "anyio-scope" else trio.move_on_after(delay)
    with scope_cm as scope:
        await op()
        await anyio.sleep(0)  # a level-triggered scope cancels here at the latest
    return "caught" if scope.cancelled_caught else "completed"


async def _nothing_strikes_later() -> None:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None  # trio
    if task is not None:
        assert task.cancelling() == 0
    for _ in range(3):
        await anyio.sleep(0.002)


# -- offloaded calls ----------------------------------------------------------------

CALL_OPS = ("run_sync", "asyncify", "pinned")


class _Slow:
    """0.4 s of blocking work -- or, when abandoned, blocked until released."""

    def __init__(self, abandon: bool) -> None:
        self.started = threading.Event()
        self.finished = threading.Event()
        self.release = threading.Event()
        self.seconds = 10 if abandon else 0.4

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(self.seconds)
        self.finished.set()
        return "result"

    def call(self) -> str:
        return self()


@pytest.mark.parametrize("abandon", [False, True], ids=["wait", "abandon"])
@pytest.mark.parametrize("op", CALL_OPS)
@pytest.mark.parametrize(("loop", "kind"), CASES)
def test_offloaded_call(loop: str, kind: str, op: str, abandon: bool) -> None:
    async def case() -> None:
        slow = _Slow(abandon)
        facade = adapt.AsyncObject(slow, pin=True, abandon_on_cancel=abandon)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "run_sync": lambda: run_sync(slow, abandon_on_cancel=abandon),
            "asyncify": adapt.asyncify(slow.__call__, abandon_on_cancel=abandon),
            "pinned": facade.call,
        }
        assert await _under(kind, calls[op], 0.03) != "completed"
        if not slow.started.is_set():
            pass  # cancelled while still queued (a busy machine): it never runs
        elif abandon:
            assert not slow.finished.is_set()  # the scope did not wait for it
            slow.release.set()
        else:
            assert slow.finished.is_set()  # the call never outlives its scope
        await _nothing_strikes_later()
        if slow.started.is_set():
            await run_sync(slow.finished.wait, 5)
        await facade.aclose()

    default = CapacityLimiter.default()
    _run(loop, case)
    deadline = time.monotonic() + 2
    while default.borrowed_tokens and time.monotonic() < deadline:
        time.sleep(0.01)
    assert default.borrowed_tokens == 0


# -- bridge waits -------------------------------------------------------------------


@asynccontextmanager
async def _limiter() -> AsyncIterator[tuple[Callable[[], Awaitable[object]], Any]]:
    limiter = CapacityLimiter(1)
    await limiter.acquire()

    async def after() -> None:
        assert limiter.waiting == 0
        limiter.release()
        await limiter.acquire()  # the token is free again, for anyone
        limiter.release()
        assert limiter.borrowed_tokens == 0

    yield limiter.acquire, after


@asynccontextmanager
async def _oneshot() -> AsyncIterator[tuple[Callable[[], Awaitable[object]], Any]]:
    callback, result = adapt.oneshot[int]()

    async def after() -> None:
        await run_sync(callback, 5)  # from a thread
        assert await result == 5

    yield lambda: result, after


@asynccontextmanager
async def _channel() -> AsyncIterator[tuple[Callable[[], Awaitable[object]], Any]]:
    send, stream = adapt.channel[int](maxsize=4)
    it = aiter(stream)

    async def after() -> None:
        await run_sync(send, 6)
        assert await anext(it) == 6

    yield lambda: anext(it), after
    send.close()
    await stream.aclose()


@asynccontextmanager
async def _reader() -> AsyncIterator[tuple[Callable[[], Awaitable[object]], Any]]:
    rfd, wfd = os.pipe()
    async with adapt.reader(io.FileIO(rfd, "rb")) as r:

        async def after() -> None:
            os.write(wfd, b"z")
            assert await r.read(1) == b"z"
            os.close(wfd)  # end of file: the pump ends

        yield lambda: r.read(1), after


@asynccontextmanager
async def _iterate() -> AsyncIterator[tuple[Callable[[], Awaitable[object]], Any]]:
    go = threading.Event()

    def items() -> Iterator[int]:
        go.wait(5)
        yield 7

    async with adapt.iterate(items()) as it:

        async def after() -> None:
            go.set()
            assert await anext(it) == 7

        yield lambda: anext(it), after


WAITS = {
    "limiter": _limiter,
    "oneshot": _oneshot,
    "channel": _channel,
    "reader": _reader,
    "iterate": _iterate,
}


@pytest.mark.parametrize("wait", list(WAITS))
@pytest.mark.parametrize(("loop", "kind"), CASES)
def test_bridge_wait(loop: str, kind: str, wait: str) -> None:
    async def case() -> None:
        async with WAITS[wait]() as (op, after):
            start = time.monotonic()
            assert await _under(kind, op, 0.02) != "completed"
            assert time.monotonic() - start < 1  # nothing to wait for: prompt
            await _nothing_strikes_later()
            await after()  # what arrives afterwards is delivered

    _run(loop, case)


# -- the loop stopped or closed while a call runs ----------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_loop_closed_while_a_call_runs(loop: str) -> None:
    release = threading.Event()
    limiter = CapacityLimiter(1)
    new_loop = uvloop.new_event_loop() if loop == "uvloop" else asyncio.new_event_loop()
    task = new_loop.create_task(run_sync(release.wait, 5, limiter=limiter))
    new_loop.run_until_complete(asyncio.sleep(0.05))  # stopped, the call running
    assert limiter.borrowed_tokens == 1
    new_loop.call_soon(task.cancel)  # what asyncio.run's shutdown would do...
    new_loop.run_until_complete(asyncio.sleep(0))  # ...but the loop stops first
    new_loop.close()
    release.set()  # the outcome reaches a closed loop: dropped, the token freed
    deadline = time.monotonic() + 2
    while limiter.borrowed_tokens and time.monotonic() < deadline:
        time.sleep(0.01)
    assert limiter.borrowed_tokens == 0
    assert asyncio.run(run_sync(sum, [1, 2], limiter=limiter)) == 3  # still working
    del task


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "trio"])
def test_portal_call_on_a_stopped_then_closed_loop(loop: str) -> None:
    portals: list[Portal] = []

    async def make() -> None:
        portals.append(Portal())

    async def forever() -> None:
        await anyio.sleep(60)

    _run(loop, make)  # the loop has ended: calls are refused at once
    with pytest.raises(RuntimeError, match="ended"):
        portals[0].call(forever)
    if loop == "trio":
        return
    new_loop = uvloop.new_event_loop() if loop == "uvloop" else asyncio.new_event_loop()
    new_loop.run_until_complete(make())  # stopped, not closed
    portal = portals[1]
    with pytest.raises(TimeoutError):
        portal.call(forever, timeout=0.2)  # the loop does not run: no answer
    got: list[object] = []

    def call() -> None:
        try:
            got.append(portal.call(forever))
        except concurrent.futures.CancelledError as exc:
            got.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.05)
    new_loop.close()  # the caller notices within a moment
    caller.join(2)
    assert not caller.is_alive()
    assert isinstance(got[0], concurrent.futures.CancelledError)
