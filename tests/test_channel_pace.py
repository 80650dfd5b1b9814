"""channel(overflow="pace"): a bounded, lossless channel for a producer on the
event loop's own thread, which cannot block and must not drop."""

from __future__ import annotations

import anyio
import pytest

from adapt import ClosedResourceError, Overflow, Receiver, Sender, channel

TIMEOUT = 5.0


async def test_loop_thread_pump_is_bounded_and_loses_nothing(backend: str) -> None:
    # A pump task reads "batches" (a library callback may deliver several
    # items per read) while there is room, and parks in wait_room() while
    # the slow consumer is behind.
    maxsize, batch, n = 8, 3, 300
    send, stream = channel[int](maxsize=maxsize, overflow="pace")
    most = 0

    async def pump() -> None:
        i = 0
        while i < n:
            if not send.room:
                await send.wait_room()
                continue
            for _ in range(min(batch, n - i)):  # one read: a whole batch
                send(i)
                i += 1
            await anyio.sleep(0)
        send.close()

    got: list[int] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            async for item in stream:
                most = max(most, len(stream) + 1)
                got.append(item)
                if item % 10 == 0:
                    await anyio.sleep(0.001)  # a slow consumer
    assert got == list(range(n))  # all of them, in order
    assert most <= maxsize + batch - 1  # bounded: the bound, plus one read's overshoot
    assert send.dropped == 0
    assert send.room == maxsize  # every credit came back, every debt was repaid


async def test_overshoot_is_repaid_before_credits_return(backend: str) -> None:
    send, stream = channel[int](maxsize=2, overflow=Overflow.PACE)
    for i in range(5):
        send(i)  # never raises, never blocks, even in the loop thread
    assert len(stream) == 5
    assert send.room == 0
    assert await stream.__anext__() == 0
    assert await stream.__anext__() == 1
    assert await stream.__anext__() == 2
    assert send.room == 0  # three items were taken past the bound: repaid first
    assert await stream.__anext__() == 3
    assert send.room == 1
    assert await stream.__anext__() == 4
    assert send.room == 2


async def test_wait_room_wakes_at_half_and_returns_at_once_with_room(backend: str) -> None:
    send, stream = channel[int](maxsize=4, overflow="pace")
    with anyio.fail_after(TIMEOUT):
        await send.wait_room()  # room now: no wait
    for i in range(4):
        send(i)
    woke: list[int] = []

    async def producer() -> None:
        await send.wait_room()
        woke.append(len(stream))

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            await anyio.sleep(0.02)
            assert woke == []  # full: parked
            await stream.__anext__()
            await anyio.sleep(0.02)
            assert woke == []  # 3 left: above half
            await stream.__anext__()
    assert woke == [2]  # drained to half (hysteresis, as for blocked threads)


async def test_wait_room_ends_with_the_stream(backend: str) -> None:
    for end in ("receiver_closed", "sender_closed"):
        send, stream = channel[int](maxsize=1, overflow="pace")
        send(0)
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send.wait_room)
                await anyio.sleep(0.01)
                if end == "receiver_closed":
                    stream.close()
                else:
                    send.close()
        assert send.closed
        if end == "receiver_closed":
            with pytest.raises(ClosedResourceError):
                await stream.__anext__()


async def test_wait_room_cancelled_leaves_nothing(backend: str) -> None:
    send, stream = channel[int](maxsize=1, overflow="pace")
    send(0)
    with anyio.move_on_after(0.02) as scope:
        await send.wait_room()
    assert scope.cancelled_caught
    assert send._st.blocked == []
    assert await stream.__anext__() == 0
    assert send.room == 1


def test_room_of_an_unbounded_channel_is_none() -> None:
    send, stream = channel[int](maxsize=None)
    assert send.room is None
    assert isinstance(send, Sender)
    assert isinstance(stream, Receiver)
    with pytest.raises(ValueError, match="never overflows"):
        channel[int](maxsize=None, overflow="pace")
