"""run_sync, CapacityLimiter and the worker pool, on asyncio, uvloop and trio."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import os
import threading
import time
import traceback
from collections.abc import Callable

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

import adapt
from adapt import CapacityLimiter, run_sync
from adapt._offload._pool import IDLE_TIMEOUT, Sink

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("adapt-worker-")]


async def test_result_and_arguments(backend: str) -> None:
    def add(a: int, b: int) -> tuple[int, str]:
        return a + b, threading.current_thread().name

    total, thread = await run_sync(add, 2, 3)
    assert total == 5
    assert thread.startswith("adapt-worker-")
    assert await run_sync(functools.partial(divmod, 7), 2) == (3, 1)


async def test_exception_keeps_a_clean_traceback(backend: str) -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom") as info:
        await run_sync(fail)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "fail"  # the user's frame is where it ends
    # worker-side machinery is cut: nothing between the task side and `fail`
    ours = [f.name for f in frames if f.filename.startswith(os.path.dirname(adapt.__file__))]
    assert "run_one" not in ours
    assert "_invoke" not in ours
    names = [f.name for f in frames]
    assert names.index("run_sync") < names.index("fail")


async def test_stop_iteration_becomes_runtime_error(backend: str) -> None:
    with pytest.raises(RuntimeError, match="StopIteration") as info:
        await run_sync(next, iter([]))
    assert isinstance(info.value.__cause__, StopIteration)


async def test_bad_input(backend: str) -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        await run_sync(42)  # type: ignore[arg-type]

    async def coro() -> int:
        return 1

    with pytest.raises(TypeError, match="returned a coroutine"):
        await run_sync(coro)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exactly one argument"):
        await run_sync(abs, 1, 2)  # type: ignore[call-arg]


def test_needs_a_running_loop() -> None:
    coro = run_sync(int)
    with pytest.raises(RuntimeError, match="running asyncio"):
        coro.send(None)
    coro.close()


async def test_contextvars_are_copied_in(backend: str) -> None:
    VAR.set("outer")

    def read_and_set() -> str:
        value = VAR.get()
        VAR.set("inner")
        return value

    assert await run_sync(read_and_set) == "outer"
    assert VAR.get() == "outer"  # the worker's change stays in its copy


async def test_cancel_waits_for_the_call_and_delivers_its_result(backend: str) -> None:
    done = threading.Event()
    got: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        done.set()
        return "result"

    start = time.monotonic()
    # start: cancel-default
    with anyio.move_on_after(0.02) as scope:
        got.append(await run_sync(slow))  # slow() takes 0.2 s: its result arrives
        await anyio.sleep(1)  # the cancellation is re-delivered here
        got.append("not reached")
    # end: cancel-default
    assert scope.cancelled_caught
    assert done.is_set()
    assert got == ["result"]
    assert time.monotonic() - start >= 0.2


@pytest.mark.backends("trio")
async def test_no_call_starts_in_a_scope_cancelled_already(backend: str) -> None:
    # trio.to_thread.run_sync raises at once there; so must run_sync, even
    # when an idle worker could take the call before the abort is asked
    await run_sync(time.sleep, 0)  # an idle worker is waiting
    ran: list[str] = []

    class Recorder:
        def record(self, what: str) -> None:
            ran.append(what)

    pinned = adapt.asyncify(Recorder(), pin=True)
    await pinned.record("started")  # its thread is up and idle
    with anyio.CancelScope() as scope:
        scope.cancel()
        for call in (
            lambda: run_sync(ran.append, "run_sync"),
            lambda: adapt.asyncify(ran.append)("asyncify"),
            lambda: pinned.record("pinned"),
        ):
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await call()
    await pinned.aclose()
    assert ran == ["started"]


async def test_cancel_delivers_the_exception_too(backend: str) -> None:
    def slow_fail() -> None:
        time.sleep(0.1)
        raise ValueError("after cancel")

    with anyio.move_on_after(0.02), pytest.raises(ValueError, match="after cancel"):
        await run_sync(slow_fail)


async def test_abandon_on_cancel_returns_at_once(backend: str) -> None:
    release = threading.Event()
    finished = threading.Event()

    def blocked() -> str:
        release.wait(5)
        finished.set()
        return "dropped"

    start = time.monotonic()
    with anyio.move_on_after(0.05) as scope:
        await run_sync(blocked, abandon_on_cancel=True)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 1
    assert not finished.is_set()  # still running, abandoned
    release.set()
    await run_sync(finished.wait, 5)


async def test_limiter_bounds_concurrency(backend: str) -> None:
    limiter = CapacityLimiter(3)
    lock = threading.Lock()
    running = peak = 0

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return i * 2

    results: dict[int, int] = {}

    # start: limiter
    async def call(i: int) -> None:
        results[i] = await run_sync(work, i, limiter=limiter)  # at most 3 at once

    # end: limiter

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, i)
    assert results == {i: i * 2 for i in range(20)}
    assert peak == 3
    assert limiter.borrowed_tokens == 0


async def test_saturated_default_pool(backend: str) -> None:
    default = CapacityLimiter.default()
    assert default.total_tokens == 40
    results: list[int] = []

    async def call(i: int) -> None:
        results.append(await run_sync(time.sleep, 0.02) or i)

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(120):
            tg.start_soon(call, i)
    assert sorted(results) == list(range(120))
    # 120 sleeps of 20 ms, 40 at a time: about 60 ms, far from 2.4 s serial
    assert time.monotonic() - start < 1.5
    assert default.borrowed_tokens == 0


async def test_cancel_while_queued_on_the_limiter_never_runs(backend: str) -> None:
    limiter = CapacityLimiter(1)
    release = threading.Event()
    ran: list[str] = []

    async def hold() -> None:
        await run_sync(release.wait, 5, limiter=limiter)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await anyio.sleep(0.05)
        assert limiter.borrowed_tokens == 1
        with anyio.move_on_after(0.05) as scope:
            await run_sync(ran.append, "queued", limiter=limiter)
        assert scope.cancelled_caught
        assert limiter.waiting == 0
        release.set()
    await anyio.sleep(0.05)
    assert ran == []
    assert limiter.borrowed_tokens == 0


async def test_limiter_as_async_context_and_resizing(backend: str) -> None:
    limiter = CapacityLimiter(1)
    order: list[str] = []
    async with limiter:
        assert limiter.available_tokens == 0
        with pytest.raises(RuntimeError, match="no CapacityLimiter token"):
            limiter.acquire_nowait()

        async def second() -> None:
            async with limiter:
                order.append("second")

        async with anyio.create_task_group() as tg:
            tg.start_soon(second)
            await anyio.sleep(0.02)
            assert order == []
            limiter.total_tokens = 2  # growing lets the waiter in
            await anyio.sleep(0.02)
            assert order == ["second"]
    assert limiter.borrowed_tokens == 0
    limiter.total_tokens = math.inf
    assert limiter.available_tokens == math.inf


def test_limiter_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CapacityLimiter(0)
    with pytest.raises(TypeError, match=r"int or math\.inf"):
        CapacityLimiter(1.5)
    with pytest.raises(TypeError, match=r"int or math\.inf"):
        CapacityLimiter(True)
    limiter = CapacityLimiter(2)
    with pytest.raises(RuntimeError, match="released more often"):
        limiter.release()
    with pytest.raises(ValueError, match="at least 1"):
        limiter.total_tokens = -1
    assert limiter.total_tokens == 2


async def test_nested_loop_in_a_worker_runs_inline(backend: str) -> None:
    limiter = CapacityLimiter(1)

    async def inner() -> str:
        return await run_sync(lambda: threading.current_thread().name, limiter=limiter)

    def outer() -> tuple[str, str]:
        # a full pool (the only token is ours): offloading again would deadlock
        return threading.current_thread().name, asyncio.run(inner())

    me, nested = await run_sync(outer, limiter=limiter)
    assert me == nested
    assert me.startswith("adapt-worker-")


async def test_call_back_into_the_loop_does_not_deadlock_a_full_limiter(backend: str) -> None:
    limiter = CapacityLimiter(1)
    token = anyio.lowlevel.current_token()

    async def from_loop() -> str:
        # made on behalf of the worker that holds the only token
        return await run_sync(lambda: "nested", limiter=limiter)

    def worker() -> str:
        return anyio.from_thread.run(from_loop, token=token)

    with anyio.fail_after(5):
        assert await run_sync(worker, limiter=limiter) == "nested"
    assert limiter.borrowed_tokens == 0


async def test_completions_are_batched(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drains = 0
    original = Sink._drain

    def counting(self: Sink) -> None:
        nonlocal drains
        drains += 1
        original(self)

    monkeypatch.setattr(Sink, "_drain", counting)
    pushed = threading.Semaphore(0)
    push = Sink.push

    def counting_push(self: Sink, item: Callable[[], object]) -> None:
        push(self, item)
        pushed.release()

    monkeypatch.setattr(Sink, "push", counting_push)
    finished = threading.Semaphore(0)
    go = threading.Event()  # no call completes before the loop is blocked
    started = 0

    def work(i: int) -> int:
        assert go.wait(5)
        finished.release()
        return i

    results: list[int] = []

    async def call(i: int) -> None:
        nonlocal started
        started += 1
        results.append(await run_sync(work, i))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, i)
        while started < 20:
            await anyio.sleep(0)
        drains = 0
        # keep the loop busy while all 20 calls finish (blocking it on purpose)
        go.set()
        for _ in range(20):
            assert finished.acquire(timeout=5)
        for _ in range(20):  # each worker has handed its result to the loop
            assert pushed.acquire(timeout=5)
    assert sorted(results) == list(range(20))
    assert drains == 1  # 20 results, one loop wake-up


async def test_idle_workers_exit(backend: str) -> None:
    await run_sync(time.sleep, 0)
    assert _worker_threads()
    deadline = time.monotonic() + 2
    while _worker_threads() and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert not _worker_threads()
    assert IDLE_TIMEOUT < 0.5


async def test_threads_are_reused(backend: str) -> None:
    idents = {await run_sync(threading.get_ident) for _ in range(50)}
    assert len(idents) <= 2


async def test_bad_limiter_or_policy_is_a_type_error_and_runs_nothing(backend: str) -> None:
    ran: list[int] = []
    with pytest.raises(TypeError, match="CapacityLimiter"):
        await run_sync(ran.append, 1, limiter=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abandon_on_cancel"):
        await run_sync(ran.append, 2, abandon_on_cancel="yes")  # type: ignore[arg-type]
    assert ran == []
    assert await run_sync(ran.append, 3) is None  # the pool is unharmed
    assert ran == [3]
