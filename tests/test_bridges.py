"""One-shot bridges (oneshot, deferred) and the reverse direction (Portal)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import queue
import random
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import adapt
from adapt import Callback, CallbackDropped, Portal, Result, deferred, oneshot

TIMEOUT = 5.0


def in_thread(fn: Callable[[], object], delay: float = 0.0) -> threading.Thread:
    """Run ``fn`` in a new (joined by the caller) thread, after ``delay`` s."""

    def run() -> None:
        if delay:
            threading.Event().wait(delay)
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


# -- oneshot: values and errors ------------------------------------------


async def test_value_from_a_foreign_thread_while_awaiting(backend: str) -> None:
    callback, result = oneshot[int]()
    t = in_thread(lambda: callback(42), delay=0.02)
    with anyio.fail_after(TIMEOUT):
        assert await result == 42
    t.join(TIMEOUT)
    assert result.done()
    assert callback.done


async def test_value_from_a_foreign_thread_before_awaiting(backend: str) -> None:
    callback, result = oneshot[str]()
    in_thread(lambda: callback("early")).join(TIMEOUT)
    assert result.done()
    assert await result == "early"


async def test_value_from_the_loop_thread(backend: str) -> None:
    # the producer is another task of the same loop: the direct (same-thread) wake
    callback, result = oneshot[str]()

    async def produce() -> None:
        await anyio.sleep(0.01)
        callback("same thread")

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        with anyio.fail_after(TIMEOUT):
            assert await result == "same thread"


async def test_fail_raises_in_the_awaiting_task(backend: str) -> None:
    callback, result = oneshot[int]()
    err = ConnectionError("refused")
    in_thread(lambda: callback.fail(err), delay=0.01).join(TIMEOUT)
    with pytest.raises(ConnectionError) as info:
        await result
    assert info.value is err


async def test_fail_rejects_what_is_not_an_exception(backend: str) -> None:
    callback, result = oneshot[int]()
    with pytest.raises(TypeError, match="instance"):
        callback.fail(ValueError)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exception instance"):
        callback.fail("oops")  # type: ignore[arg-type]
    # nothing was used up: the callback still works
    assert not callback.done
    callback(7)
    assert await result == 7


async def test_callback_of_none_takes_no_argument(backend: str) -> None:
    callback, result = oneshot[None]()
    in_thread(callback).join(TIMEOUT)
    assert await result is None


async def test_result_can_be_awaited_again(backend: str) -> None:
    callback, result = oneshot[int]()
    callback(1)
    assert await result == 1
    assert await result == 1
    callback2, result2 = oneshot[int]()
    callback2.fail(KeyError("k"))
    for _ in range(2):
        with pytest.raises(KeyError):
            await result2


async def test_late_and_repeated_calls_are_ignored_in_any_thread(backend: str) -> None:
    callback, result = oneshot[int]()
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            callback(1)
            callback(2)
            callback.fail(RuntimeError("late"))
            callback.release()
        except BaseException as exc:  # pragma: no cover - the test fails below
            errors.append(exc)

    in_thread(producer).join(TIMEOUT)
    assert errors == []
    assert await result == 1
    callback(3)  # after the await, in the loop thread: ignored too
    assert await result == 1


async def test_many_threads_race_to_call_one_callback(backend: str) -> None:
    callback, result = oneshot[int]()
    start = threading.Barrier(8)

    def racer(i: int) -> None:
        start.wait(TIMEOUT)
        callback(i)

    threads = [in_thread(lambda i=i: racer(i)) for i in range(8)]
    with anyio.fail_after(TIMEOUT):
        value = await result
    for t in threads:
        t.join(TIMEOUT)
    assert value in range(8)
    assert await result == value


# -- oneshot: dropped callbacks -------------------------------------------


async def test_garbage_collected_callback_raises_callback_dropped(backend: str) -> None:
    callback, result = oneshot[int]()
    del callback
    gc.collect()
    with pytest.raises(CallbackDropped, match="garbage-collected"):
        await result


async def test_released_callback_raises_callback_dropped(backend: str) -> None:
    callback, result = oneshot[int]()
    callback.release()
    assert callback.done
    with pytest.raises(CallbackDropped, match="released"):
        await result


async def test_callback_dropped_in_a_foreign_thread_wakes_the_waiter(backend: str) -> None:
    callback, result = oneshot[int]()
    handoff: queue.SimpleQueue[Callback[int]] = queue.SimpleQueue()
    handoff.put(callback)
    del callback

    def library_thread() -> None:
        held = handoff.get()
        threading.Event().wait(0.02)
        del held  # the library forgets the callback: the finalizer runs here

    t = in_thread(library_thread)
    with anyio.fail_after(TIMEOUT), pytest.raises(CallbackDropped):
        await result
    t.join(TIMEOUT)


async def test_callback_dropped_in_the_loop_thread_while_awaited(backend: str) -> None:
    # the finalizer runs in the loop thread, in the middle of another task:
    # it must go through the loop token, not wake the waiter re-entrantly
    callback, result = oneshot[int]()
    holder: list[Callback[int]] = [callback]
    del callback

    async def drop_later() -> None:
        await anyio.sleep(0.01)
        holder.clear()

    async with anyio.create_task_group() as tg:
        tg.start_soon(drop_later)
        with anyio.fail_after(TIMEOUT), pytest.raises(CallbackDropped):
            await result


async def test_callback_in_a_reference_cycle_is_found_by_the_collector(backend: str) -> None:
    callback, result = oneshot[int]()
    cycle: dict[str, Any] = {"callback": callback}
    cycle["self"] = cycle
    del callback, cycle
    gc.collect()
    with pytest.raises(CallbackDropped):
        await result


def test_callback_called_or_dropped_after_the_loop_ended() -> None:
    kept: list[Callback[int]] = []

    async def main() -> None:
        callback, result = oneshot[int]()
        kept.append(callback)
        with anyio.move_on_after(0.01):
            await result  # cancelled: the loop ends with the callback uncalled

    anyio.run(main)
    callback = kept.pop()
    done = threading.Thread(target=callback, args=(1,))
    done.start()
    done.join(TIMEOUT)  # no loop left to wake: ignored quietly
    callback2, result2 = oneshot[int]()

    async def await_with_timeout() -> None:
        with anyio.move_on_after(0.01):
            await result2

    anyio.run(await_with_timeout)
    del callback2
    gc.collect()  # its finalizer finds no loop: nothing raised, nothing printed
    assert result2.done()


# -- oneshot: cancellation and misuse ---------------------------------------


async def test_cancelled_await_loses_nothing(backend: str) -> None:
    callback, result = oneshot[int]()
    with anyio.move_on_after(0.02):
        await result
    assert not result.done()
    in_thread(lambda: callback(5)).join(TIMEOUT)
    assert await result == 5


async def test_cancel_racing_with_a_foreign_call(backend: str) -> None:
    # whichever wins, the value is never lost: it is awaited again afterwards
    for i in range(50):
        callback, result = oneshot[int]()
        t = in_thread(lambda cb=callback, i=i: cb(i), delay=random.random() * 0.002)
        with anyio.move_on_after(random.random() * 0.002):
            await result
        t.join(TIMEOUT)
        with anyio.fail_after(TIMEOUT):
            assert await result == i


async def test_cancel_in_the_same_tick_as_the_wake(backend: str) -> None:
    # deterministic version of the race above: another task cancels the
    # waiting scope and calls the callback before the waiting task runs again
    callback, result = oneshot[int]()
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:

            async def wake_and_cancel() -> None:
                await anyio.sleep(0.01)
                scope.cancel()
                callback(1)

            tg.start_soon(wake_and_cancel)
            await result
        await anyio.sleep(0.01)  # no cancellation may escape the scope...
    assert await result == 1  # ...and the value is kept


async def test_two_tasks_awaiting_at_once_is_an_error(backend: str) -> None:
    callback, result = oneshot[int]()
    async with anyio.create_task_group() as tg:
        got: list[int] = []

        async def first() -> None:
            got.append(await result)

        tg.start_soon(first)
        await anyio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already awaiting"):
            await result
        callback(9)
    assert got == [9]


async def test_round_trips_under_thread_races(backend: str) -> None:
    # lost wake-ups would hang here: many round trips with a worker thread
    jobs: queue.SimpleQueue[tuple[Callback[int], int] | None] = queue.SimpleQueue()

    def worker() -> None:
        while (job := jobs.get()) is not None:
            cb, v = job
            cb(v * 2)

    t = in_thread(worker)
    try:
        with anyio.fail_after(TIMEOUT * 2):
            for i in range(2000):
                callback, result = oneshot[int]()
                jobs.put((callback, i))
                del callback
                assert await result == 2 * i
    finally:
        jobs.put(None)
        t.join(TIMEOUT)


def test_oneshot_needs_no_running_loop() -> None:
    callback, result = oneshot[int]()
    callback(3)

    async def main() -> int:
        return await result

    assert anyio.run(main) == 3
    assert repr(callback) == "<adapt.Callback done>"
    assert repr(result) == "<adapt.Result done>"


# -- deferred ----------------------------------------------------------------


async def test_deferred_starts_only_when_awaited(backend: str) -> None:
    # start: deferred
    calls: list[Callback[str]] = []

    def start(done: Callback[str]) -> None:
        calls.append(done)
        in_thread(lambda: done("fetched"), delay=0.01)

    pending = deferred(start)
    await anyio.sleep(0.01)
    assert calls == []
    assert "not started" in repr(pending)
    with anyio.fail_after(TIMEOUT):
        assert await pending == "fetched"
        assert await pending == "fetched"  # not started again
    assert len(calls) == 1
    # end: deferred


async def test_deferred_start_may_answer_synchronously(backend: str) -> None:
    assert await deferred[int](lambda done: done(11)) == 11


async def test_deferred_start_that_raises(backend: str) -> None:
    def start(done: Callback[int]) -> None:
        raise OSError("no route")

    pending = deferred(start)
    with pytest.raises(OSError, match="no route"):
        await pending
    with pytest.raises(OSError, match="no route"):
        await pending


async def test_deferred_whose_callback_is_dropped(backend: str) -> None:
    # the request forgets its callback; the awaiting task must not hang
    with anyio.fail_after(TIMEOUT), pytest.raises(CallbackDropped):
        await deferred[int](lambda done: None)


async def test_deferred_rejects_a_non_callable(backend: str) -> None:
    with pytest.raises(TypeError, match="callable"):
        deferred(42)  # type: ignore[arg-type]


# -- Portal: a sync thread calls into the loop ---------------------------------


async def double_later(x: int) -> int:
    await anyio.sleep(0.005)
    return 2 * x


async def fail_later(message: str) -> int:
    await anyio.sleep(0.005)
    raise LookupError(message)


async def sleep_forever() -> int:
    await anyio.sleep(3600)
    raise AssertionError("unreachable")


async def test_portal_call_from_a_thread(backend: str) -> None:
    portal = Portal()
    assert backend.replace("uvloop", "asyncio") in repr(portal)

    # start: portal-call
    def worker() -> list[object]:
        out: list[object] = [portal.call(double_later, 21)]
        with pytest.raises(LookupError, match="nope"):
            portal.call(fail_later, "nope")
        out.append(portal.call_sync(threading.current_thread))
        return out

    with anyio.fail_after(TIMEOUT):
        value, thread = await anyio.to_thread.run_sync(worker)
    assert value == 42
    assert thread is threading.current_thread()  # call_sync ran in the loop thread
    # end: portal-call


async def test_portal_call_timeout_cancels_the_task(backend: str) -> None:
    portal = Portal()
    cancelled = threading.Event()

    async def slow() -> int:
        try:
            await anyio.sleep(3600)
        finally:
            cancelled.set()
        return 0

    def worker() -> None:
        with pytest.raises(TimeoutError):
            portal.call(slow, timeout=0.02)

    with anyio.fail_after(TIMEOUT):
        await anyio.to_thread.run_sync(worker)
        while not cancelled.is_set():
            await anyio.sleep(0.005)


async def test_portal_call_in_the_loop_thread_is_an_error(backend: str) -> None:
    portal = Portal()
    with pytest.raises(RuntimeError, match="own thread"):
        portal.call(double_later, 1)
    # call_sync in the loop thread simply calls
    assert portal.call_sync(lambda: "here") == "here"


async def test_portal_bad_input(backend: str) -> None:
    portal = Portal()
    with pytest.raises(TypeError, match="async function"):
        portal.start(42, then=print, on_error=print)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="callables"):
        portal.start(double_later, 1, then=None, on_error=print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        portal.call(double_later, 1, timeout=-1)
    with pytest.raises(TypeError, match="callable"):
        portal.call_sync(3)  # type: ignore[call-overload]


def test_portal_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running"):
        Portal()


def test_portal_after_the_loop_ended() -> None:
    portals: list[Portal] = []

    async def main() -> None:
        portals.append(Portal())

    anyio.run(main)
    with pytest.raises(RuntimeError, match="ended"):
        portals[0].call(double_later, 1, timeout=TIMEOUT)
    with pytest.raises(RuntimeError, match="ended"):
        portals[0].call_sync(int, timeout=TIMEOUT)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_thread_blocked_in_call_wakes_when_the_loop_ends(backend: str) -> None:
    got: queue.SimpleQueue[BaseException] = queue.SimpleQueue()

    async def main() -> None:
        portal = Portal()

        def worker() -> None:
            try:
                portal.call(sleep_forever, timeout=TIMEOUT)
            except BaseException as exc:
                got.put(exc)

        threading.Thread(target=worker).start()
        await anyio.sleep(0.05)  # the loop ends with the task still running

    anyio.run(main, backend=backend)
    exc = got.get(timeout=TIMEOUT)
    assert isinstance(exc, concurrent.futures.CancelledError), exc


def test_calls_queued_in_a_loop_that_is_discarded_fail_instead_of_hanging() -> None:
    # the loop stops with the calls still queued, and is closed without
    # running them: the waiting threads must learn it
    async def make_portal() -> Portal:
        return Portal()

    loop = asyncio.new_event_loop()
    try:
        portal = loop.run_until_complete(make_portal())  # the loop is stopped now
        got: queue.SimpleQueue[BaseException] = queue.SimpleQueue()

        def caller(call: Callable[[], object]) -> None:
            try:
                call()
            except BaseException as exc:
                got.put(exc)

        threads = [
            in_thread(lambda: caller(lambda: portal.call(double_later, 1, timeout=TIMEOUT))),
            in_thread(lambda: caller(lambda: portal.call_sync(int, timeout=TIMEOUT))),
        ]
        threading.Event().wait(0.05)  # both calls are queued in the stopped loop
    finally:
        loop.close()  # discards them
    gc.collect()
    for t in threads:
        t.join(TIMEOUT)
    errors = [got.get(timeout=TIMEOUT) for _ in threads]
    assert all(isinstance(e, concurrent.futures.CancelledError) for e in errors), errors


# -- Portal: the outcome of async code goes to a sync callback ------------------


async def test_portal_start_delivers_to_callbacks(backend: str) -> None:
    portal = Portal()
    callback, result = oneshot[int]()
    portal.start(double_later, 4, then=callback, on_error=callback.fail)
    assert await result == 8
    callback2, result2 = oneshot[int]()
    portal.start(fail_later, "bad", then=callback2, on_error=callback2.fail)
    with pytest.raises(LookupError, match="bad"):
        await result2


async def test_portal_start_from_a_callback_thread(backend: str) -> None:
    # a callback-style framework calls handler(request, respond) in its thread
    portal = Portal()
    answers: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()

    # start: portal-start
    def handler(request: int, respond: Callable[[int], object]) -> None:
        portal.start(double_later, request, then=respond, on_error=lambda e: None)

    # end: portal-start

    def framework() -> None:
        for i in range(20):
            handler(i, lambda v, i=i: answers.put((threading.current_thread().name, v)))

    t = in_thread(framework)
    with anyio.fail_after(TIMEOUT):
        got = [await anyio.to_thread.run_sync(answers.get) for _ in range(20)]
    t.join(TIMEOUT)
    assert sorted(v for _, v in got) == [2 * i for i in range(20)]
    loop_thread = threading.current_thread().name
    assert {name for name, _ in got} == {loop_thread}  # callbacks ran in the loop


async def test_portal_start_cancel(backend: str) -> None:
    portal = Portal()
    callback, result = oneshot[int]()
    cancel = portal.start(sleep_forever, then=callback, on_error=callback.fail)
    await anyio.sleep(0.01)
    in_thread(cancel).join(TIMEOUT)  # cancel from another thread
    with anyio.fail_after(TIMEOUT), pytest.raises(concurrent.futures.CancelledError):
        await result
    cancel()  # again, after the end: nothing happens


async def test_portal_start_cancelled_before_it_ran(backend: str) -> None:
    portal = Portal()
    started = False

    async def never() -> int:
        nonlocal started
        started = True
        return 1

    got: queue.SimpleQueue[BaseException | int] = queue.SimpleQueue()

    def from_thread() -> None:
        cancel = portal.start(never, then=got.put, on_error=got.put)
        cancel()  # queued behind the start: the task starts, then is cancelled

    in_thread(from_thread).join(TIMEOUT)
    with anyio.fail_after(TIMEOUT):
        outcome = await anyio.to_thread.run_sync(got.get)
    # the function had no checkpoint: it ran to completion before the cancel
    assert outcome == 1
    assert started


async def test_portal_callback_that_raises_is_logged(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    portal = Portal()
    done = anyio.Event()

    def bad_then(value: int) -> None:
        done.set()
        raise ValueError("callback bug")

    with caplog.at_level(logging.ERROR, logger="adapt"):
        portal.start(double_later, 1, then=bad_then, on_error=print)
        with anyio.fail_after(TIMEOUT):
            await done.wait()
        await anyio.sleep(0)
    assert any("Portal.start" in r.getMessage() and r.exc_info for r in caplog.records)


# -- public names ---------------------------------------------------------------


def test_bridge_names_are_exported() -> None:
    for name in (
        "Callback",
        "CallbackDropped",
        "ChannelFull",
        "Overflow",
        "Portal",
        "Receiver",
        "Result",
        "Sender",
        "channel",
        "deferred",
        "oneshot",
    ):
        assert name in adapt.__all__
        assert getattr(adapt, name).__module__.startswith("adapt._")
    assert issubclass(CallbackDropped, Exception)
    assert Result.__name__ == "Result"
