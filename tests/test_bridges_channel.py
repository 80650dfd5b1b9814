"""channel(): a multi-shot callback feeding ``async for``."""

from __future__ import annotations

import gc
import queue
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from adapt import (
    CallbackDropped,
    ChannelFull,
    ClosedResourceError,
    Overflow,
    Receiver,
    Sender,
    channel,
)
from adapt._bridges._buffer import BUDGET

TIMEOUT = 5.0


def thread(fn: Callable[[], object]) -> threading.Thread:
    t = threading.Thread(target=fn)
    t.start()
    return t


async def collect(stream: Receiver[Any]) -> list[Any]:
    with anyio.fail_after(TIMEOUT):
        return [item async for item in stream]


class CountingToken:
    """Wraps a loop token to count the loop wake-ups the channel asks for."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.wakeups = 0

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self.wakeups += 1
        self.token.run_sync_soon(fn, *args)

    def is_current(self) -> bool:
        return bool(self.token.is_current())


def count_wakeups(stream: Receiver[Any]) -> CountingToken:
    state = stream._st  # type: ignore[attr-defined]
    counting = CountingToken(state.token)
    state.token = counting
    return counting


# -- delivery ------------------------------------------------------------------


async def test_items_from_a_foreign_thread_in_order(backend: str) -> None:
    send, stream = channel[int](maxsize=64)

    def produce() -> None:
        for i in range(10_000):
            send(i)
        send.close()

    t = thread(produce)
    assert await collect(stream) == list(range(10_000))
    t.join(TIMEOUT)
    assert send.dropped == 0
    assert send.closed


async def test_items_from_the_loop_thread(backend: str) -> None:
    send, stream = channel[str]()
    counting = count_wakeups(stream)

    async def produce() -> None:
        for word in ("a", "b", "c"):
            await anyio.sleep(0.005)
            send(word)  # wakes the parked consumer directly
        send.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        assert await collect(stream) == ["a", "b", "c"]
    assert counting.wakeups == 0  # the same-thread path never goes through the loop


async def test_many_producer_threads_never_exceed_the_bound(backend: str) -> None:
    send, stream = channel[tuple[int, int]](maxsize=8)
    n_threads, per_thread = 4, 2000
    start = threading.Barrier(n_threads)

    def produce(k: int) -> None:
        start.wait(TIMEOUT)
        for i in range(per_thread):
            send((k, i), timeout=TIMEOUT)

    threads = [thread(lambda k=k: produce(k)) for k in range(n_threads)]
    got: dict[int, list[int]] = {k: [] for k in range(n_threads)}
    with anyio.fail_after(TIMEOUT * 2):
        for _ in range(n_threads * per_thread):
            k, i = await stream.__anext__()
            assert len(stream) <= 8
            got[k].append(i)
    for t in threads:
        t.join(TIMEOUT)
    assert all(v == list(range(per_thread)) for v in got.values())  # per-thread order kept


# -- coalesced wake-ups ------------------------------------------------------------


async def test_a_burst_from_a_foreign_thread_costs_one_wakeup(backend: str) -> None:
    send, stream = channel[int](maxsize=None)
    counting = count_wakeups(stream)
    got: list[int] = []

    async def consume() -> None:
        async for item in stream:
            got.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.01)  # the consumer is parked on the empty buffer
        # the loop thread is held while the burst arrives, so the consumer
        # cannot drain and park again in the middle of it
        burst = thread(lambda: [send(i) for i in range(1000)])
        burst.join(TIMEOUT)
        assert counting.wakeups == 1
        with anyio.fail_after(TIMEOUT):  # (the drain takes the consumer several loop turns)
            while len(got) < 1000:
                await anyio.sleep(0.001)
        assert got == list(range(1000))
        send.close()
    assert counting.wakeups == 1  # close() found the consumer awake: no wake-up


# -- overflow policies ---------------------------------------------------------------


async def test_block_policy_blocks_the_producer_thread(backend: str) -> None:
    send, stream = channel[int](maxsize=4)
    progress: list[int] = []

    def produce() -> None:
        for i in range(12):
            send(i, timeout=TIMEOUT)
            progress.append(i)
        send.close()

    t = thread(produce)
    with anyio.fail_after(TIMEOUT):
        while len(progress) < 4:
            await anyio.sleep(0.005)
        await anyio.sleep(0.05)
        assert progress == [0, 1, 2, 3]
        assert len(stream) == 4
    assert await collect(stream) == list(range(12))
    t.join(TIMEOUT)
    assert send.dropped == 0


async def test_block_policy_timeout_raises_and_keeps_the_item(backend: str) -> None:
    send, stream = channel[int](maxsize=2)
    outcome: list[BaseException | None] = []

    def produce() -> None:
        send(1)
        send(2)
        try:
            send(3, timeout=0.02)
            outcome.append(None)
        except ChannelFull as exc:
            outcome.append(exc)

    thread(produce).join(TIMEOUT)
    assert isinstance(outcome[0], ChannelFull)
    assert "0.02" in str(outcome[0])
    send.close()
    assert await collect(stream) == [1, 2]


async def test_block_policy_in_the_loop_thread_raises_instead(backend: str) -> None:
    send, stream = channel[int](maxsize=2)
    send(1)
    send(2)
    with pytest.raises(ChannelFull, match="event loop thread"):
        send(3)
    assert len(stream) == 2
    assert send.dropped == 0
    send.close()
    assert await collect(stream) == [1, 2]


async def test_drop_oldest(backend: str) -> None:
    # start: drop-oldest
    send, stream = channel[int](maxsize=3, overflow=Overflow.DROP_OLDEST)
    thread(lambda: [send(i) for i in range(10)]).join(TIMEOUT)
    assert send.dropped == stream.dropped == 7
    send.close()
    assert await collect(stream) == [7, 8, 9]
    # end: drop-oldest


async def test_drop_newest(backend: str) -> None:
    send, stream = channel[int](maxsize=3, overflow="drop_newest")
    for i in range(10):
        send(i)  # never blocks, even in the loop thread
    assert send.dropped == 7
    send.close()
    assert await collect(stream) == [0, 1, 2]


async def test_raise_policy(backend: str) -> None:
    send, stream = channel[int](maxsize=2, overflow=Overflow.RAISE)
    send(1)
    send(2)
    with pytest.raises(ChannelFull, match="full"):
        send(3)
    assert await stream.__anext__() == 1
    send(3)  # room again
    send.close()
    assert await collect(stream) == [2, 3]
    assert send.dropped == 0


async def test_drop_oldest_under_concurrent_consumption(backend: str) -> None:
    # producer and consumer race for the oldest item: counts stay exact
    send, stream = channel[int](maxsize=16, overflow=Overflow.DROP_OLDEST)
    n = 50_000

    def produce() -> None:
        for i in range(n):
            send(i)
        send.close()

    t = thread(produce)
    got = await collect(stream)
    t.join(TIMEOUT)
    assert got == sorted(got)
    assert len(set(got)) == len(got)
    assert len(got) + send.dropped == n


@pytest.mark.parametrize("overflow", [Overflow.DROP_OLDEST, Overflow.DROP_NEWEST])
async def test_a_million_sends_into_a_stalled_consumer(backend: str, overflow: Overflow) -> None:
    send, stream = channel[int](maxsize=100, overflow=overflow)
    n = 1_000_000

    def produce() -> None:
        for i in range(n):
            send(i)

    t = thread(produce)
    with anyio.fail_after(60):
        while t.is_alive():
            assert len(stream) <= 100
            await anyio.sleep(0.01)
    t.join(TIMEOUT)
    assert len(stream) == 100
    assert send.dropped == n - 100
    send.close()
    expected = list(range(n - 100, n)) if overflow is Overflow.DROP_OLDEST else list(range(100))
    assert await collect(stream) == expected


@pytest.mark.parametrize("overflow", [Overflow.DROP_OLDEST, Overflow.DROP_NEWEST])
def test_memory_does_not_grow_with_the_number_of_sends(overflow: Overflow) -> None:
    # tracemalloc: the peak after 10x more sends into a stalled consumer is
    # the same (the channel is made outside a loop: nobody consumes at all)
    def peak(n: int) -> int:
        send, stream = channel[bytearray](maxsize=100, overflow=overflow)
        tracemalloc.start()
        try:
            for _ in range(n):
                send(bytearray(1000))  # a fresh 1 kB object each time
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert len(stream) == 100
            assert send.dropped == n - 100

    small, large = peak(10_000), peak(100_000)
    assert large < small + 50_000, (small, large)
    assert large < 500_000  # about 100 buffered items of 1 kB


async def test_block_policy_with_a_stalled_consumer_holds_the_producer(backend: str) -> None:
    send, stream = channel[int](maxsize=100)
    sent = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal sent
        while not stop.is_set():
            try:
                send(sent, timeout=0.01)
            except ChannelFull:
                continue
            sent += 1

    t = thread(produce)
    await anyio.sleep(0.2)
    assert sent == 100
    assert len(stream) == 100
    stop.set()
    t.join(TIMEOUT)
    stream.close()


# -- on_empty: the pull side --------------------------------------------------------


async def test_on_empty_one_item_at_a_time(backend: str) -> None:
    # start: on-empty-one
    source = iter(range(5))
    asked = 0

    def refill() -> None:
        nonlocal asked
        asked += 1
        item = next(source, None)
        if item is None:
            send.close()
        else:
            send(item)

    send, stream = channel[int](on_empty=refill)
    assert asked == 0  # nothing is requested before the consumer asks
    assert await collect(stream) == [0, 1, 2, 3, 4]
    assert asked == 6
    # end: on-empty-one


async def test_on_empty_batch_per_request_from_a_thread(backend: str) -> None:
    # a paged source: each request fetches the next page in a worker thread
    # start: on-empty-batch
    pages = [list(range(k * 10, k * 10 + 10)) for k in range(3)]
    requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
    asked = 0

    def request_page() -> None:  # runs in the consuming task: must not block
        nonlocal asked
        asked += 1
        requests.put(True)

    def worker() -> None:
        for page in pages:
            requests.get(timeout=TIMEOUT)
            time.sleep(0.005)
            for item in page:
                send(item)
        requests.get(timeout=TIMEOUT)
        send.close()

    send, stream = channel[int](maxsize=100, on_empty=request_page)
    t = thread(worker)
    assert await collect(stream) == [i for page in pages for i in page]
    t.join(TIMEOUT)
    assert asked >= 4  # at least once per page, and once more to learn the end
    # end: on-empty-batch


async def test_on_empty_is_not_asked_again_after_a_cancelled_wait(backend: str) -> None:
    asked = 0

    def refill() -> None:
        nonlocal asked
        asked += 1

    send, stream = channel[int](on_empty=refill)
    for _ in range(3):
        with anyio.move_on_after(0.01):
            await stream.__anext__()
    assert asked == 1  # the request is still outstanding
    send(1)
    assert await stream.__anext__() == 1
    with anyio.move_on_after(0.01):
        await stream.__anext__()
    assert asked == 2


async def test_on_empty_that_raises(backend: str) -> None:
    def refill() -> None:
        raise OSError("source gone")

    send, stream = channel[int](on_empty=refill)
    with pytest.raises(OSError, match="source gone"):
        await stream.__anext__()
    send(1)
    assert await stream.__anext__() == 1


# -- ending the stream ---------------------------------------------------------------


async def test_close_delivers_what_was_sent_then_ends(backend: str) -> None:
    send, stream = channel[int]()
    thread(lambda: (send(1), send(2), send.close(), send(3), send.close())).join(TIMEOUT)
    assert await collect(stream) == [1, 2]
    assert send.dropped == 1  # the send after close
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_fail_raises_after_the_items(backend: str) -> None:
    send, stream = channel[int]()
    send(1)
    send.fail(ConnectionResetError("peer reset"))
    assert await stream.__anext__() == 1
    with pytest.raises(ConnectionResetError):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    with pytest.raises(TypeError, match="exception instance"):
        send.fail("not an exception")  # type: ignore[arg-type]


async def test_dropped_sender_raises_callback_dropped(backend: str) -> None:
    send, stream = channel[int]()
    send(1)
    del send
    gc.collect()
    assert await stream.__anext__() == 1  # what was sent is still delivered
    with pytest.raises(CallbackDropped, match="sender"):
        await stream.__anext__()


async def test_dropped_sender_ends_quietly_by_option(backend: str) -> None:
    send, stream = channel[int](when_dropped="end")
    send(1)
    send.release()
    assert await collect(stream) == [1]


async def test_sender_dropped_in_a_foreign_thread_wakes_the_consumer(backend: str) -> None:
    box: list[Sender[int]] = []
    send, stream = channel[int]()
    box.append(send)
    del send

    def library() -> None:
        time.sleep(0.02)
        held = box.pop()
        held(5)
        del held  # the finalizer runs in this thread

    t = thread(library)
    with anyio.fail_after(TIMEOUT):
        assert await stream.__anext__() == 5
        with pytest.raises(CallbackDropped):
            await stream.__anext__()
    t.join(TIMEOUT)


async def test_sender_dropped_in_the_loop_thread_while_consumer_parked(backend: str) -> None:
    box: list[Sender[int]] = []
    send, stream = channel[int](when_dropped="end")
    box.append(send)
    del send

    async def drop() -> None:
        await anyio.sleep(0.01)
        box.clear()  # finalizer in the loop thread, in the middle of this task

    async with anyio.create_task_group() as tg:
        tg.start_soon(drop)
        assert await collect(stream) == []


def test_sender_dropped_after_the_loop_ended() -> None:
    kept: list[Sender[int]] = []

    async def main() -> None:
        send, stream = channel[int]()
        kept.append(send)
        with anyio.move_on_after(0.01):
            await stream.__anext__()

    anyio.run(main)
    send = kept.pop()
    send(1)  # the consumer is gone: dropped quietly
    assert send.closed
    assert send.dropped == 1
    del send
    gc.collect()


# -- the consumer side ---------------------------------------------------------------


async def test_consumer_close_releases_blocked_producers(backend: str) -> None:
    send, stream = channel[int](maxsize=1)
    done = threading.Event()

    def produce() -> None:
        for i in range(5):
            send(i, timeout=TIMEOUT)
        done.set()

    t = thread(produce)
    await anyio.sleep(0.02)
    assert not done.is_set()
    async with stream:
        pass  # closes it
    t.join(TIMEOUT)
    assert done.is_set()
    assert send.closed
    assert send.dropped == 4  # the blocked one and the three after it
    with pytest.raises(ClosedResourceError):
        await stream.__anext__()


async def test_garbage_collected_consumer_releases_blocked_producers(backend: str) -> None:
    send, stream = channel[int](maxsize=1)
    send(0)
    t = thread(lambda: send(1, timeout=TIMEOUT))
    await anyio.sleep(0.02)
    del stream
    gc.collect()
    t.join(TIMEOUT)
    assert not t.is_alive()
    assert send.closed


async def test_consumer_close_wakes_a_parked_consumer(backend: str) -> None:
    send, stream = channel[int]()

    async def closer() -> None:
        await anyio.sleep(0.01)
        await stream.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(closer)
        with anyio.fail_after(TIMEOUT), pytest.raises(ClosedResourceError):
            await stream.__anext__()
    send(1)
    assert send.dropped == 1


async def test_cancelled_receive_loses_nothing(backend: str) -> None:
    send, stream = channel[int]()
    with anyio.move_on_after(0.01):
        await stream.__anext__()
    thread(lambda: send(7)).join(TIMEOUT)
    assert await stream.__anext__() == 7


async def test_two_consumers_at_once_is_an_error(backend: str) -> None:
    send, stream = channel[int]()
    async with anyio.create_task_group() as tg:
        tg.start_soon(stream.__anext__)
        await anyio.sleep(0.01)
        with pytest.raises(RuntimeError, match="another task"):
            await stream.__anext__()
        send(1)


async def test_a_busy_consumer_still_lets_other_tasks_run(backend: str) -> None:
    send, stream = channel[int](maxsize=None)
    n = BUDGET * 20
    for i in range(n):
        send(i)
    send.close()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0)
        assert await collect(stream) == list(range(n))
        tg.cancel_scope.cancel()
    assert ticks >= 10  # the consumer yielded about once per BUDGET items


# -- binding to a loop ------------------------------------------------------------------


def test_channel_made_outside_a_loop_binds_to_the_consumer() -> None:
    send, stream = channel[int]()
    send(1)
    send(2)  # not full: never blocks, even before any loop exists
    send.close()

    async def main() -> list[int]:
        return await collect(stream)

    assert anyio.run(main) == [1, 2]


def test_channel_consumed_by_another_loop_is_an_error() -> None:
    pairs: list[tuple[Sender[int], Receiver[int]]] = []

    async def make() -> None:
        pairs.append(channel[int]())

    anyio.run(make)
    send, stream = pairs.pop()

    async def consume() -> None:
        with pytest.raises(RuntimeError, match="another event loop"):
            await stream.__anext__()

    anyio.run(consume)
    assert "open" in repr(send)
    assert "0 buffered" in repr(stream)


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"maxsize": 0}, ValueError, ">= 1"),
        ({"maxsize": -5}, ValueError, ">= 1"),
        ({"maxsize": 1.5}, TypeError, "int or None"),
        ({"maxsize": True}, TypeError, "int or None"),
        ({"overflow": "sometimes"}, ValueError, "drop_oldest"),
        ({"maxsize": None, "overflow": Overflow.RAISE}, ValueError, "unbounded"),
        ({"on_empty": 3}, TypeError, "callable"),
        ({"when_dropped": "ignore"}, ValueError, "'raise' or 'end'"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        channel(**kwargs)


async def test_bad_send_timeout_loses_nothing(backend: str) -> None:
    send, stream = channel[int]()
    with pytest.raises(ValueError, match="timeout"):
        send(1, timeout=-1)
    assert len(send) == 0
    send(1)
    send.close()
    assert await collect(stream) == [1]
