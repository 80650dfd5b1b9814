"""Callback bridges: items/s through channel(), round trips/s through oneshot().

Three measurements, every case interleaved with the others in one process
(see ``_harness``), each in a fresh event loop per round:

* **channel throughput**: a foreign thread sends ``--items`` integers as fast
  as it can; a task receives them with ``async for``.  Baselines: the
  classic ``loop.call_soon_threadsafe(queue.put_nowait, item)`` per item,
  and janus (a queue with a sync and an async side).
* **oneshot round trip**: a task hands a callback to a worker thread and
  awaits it; the worker calls it.  Baseline: the worker calls
  ``loop.call_soon_threadsafe(fut.set_result, v)`` on a bare future.
* **Portal.call** (no target): a thread runs an async function in the loop
  and waits, against ``asyncio.run_coroutine_threadsafe(...).result()``.

    python benchmarks/bench_bridges.py            # full run (~1 minute)
    python benchmarks/bench_bridges.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import janus
import trio
import uvloop
from _harness import interleave, report

from adapt import Portal, channel, oneshot


def run(loop: str, main: Callable[[], Awaitable[float]]) -> float:
    if loop == "trio":
        return trio.run(main)  # type: ignore[arg-type]
    if loop == "uvloop":
        return uvloop.run(main())  # type: ignore[arg-type]
    return asyncio.run(main())  # type: ignore[arg-type]


# -- channel throughput -------------------------------------------------------------


def adapt_channel(loop: str, n: int) -> Callable[[], float]:
    async def main() -> float:
        send, stream = channel[int]()  # bounded (1024), Overflow.BLOCK

        def produce() -> None:
            for i in range(n):
                send(i)
            send.close()

        t0 = time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        count = 0
        async for _ in stream:
            count += 1
        rate = count / (time.perf_counter() - t0)
        producer.join()
        assert count == n
        return rate

    return lambda: run(loop, main)


def call_soon_threadsafe_queue(n: int) -> Callable[[], float]:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[int | None] = asyncio.Queue()

        def produce() -> None:
            for i in range(n):
                loop.call_soon_threadsafe(q.put_nowait, i)
            loop.call_soon_threadsafe(q.put_nowait, None)

        t0 = time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        count = 0
        while await q.get() is not None:
            count += 1
        rate = count / (time.perf_counter() - t0)
        producer.join()
        assert count == n
        return rate

    return lambda: run("asyncio", main)


def janus_queue(n: int) -> Callable[[], float]:
    async def main() -> float:
        q: janus.Queue[int | None] = janus.Queue()

        def produce() -> None:
            for i in range(n):
                q.sync_q.put(i)
            q.sync_q.put(None)

        t0 = time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        count = 0
        while await q.async_q.get() is not None:
            count += 1
        rate = count / (time.perf_counter() - t0)
        producer.join()
        q.close()
        await q.wait_closed()
        assert count == n
        return rate

    return lambda: run("asyncio", main)


# -- oneshot round trip ----------------------------------------------------------------


def _worker(jobs: queue.SimpleQueue[Any], call: Callable[[Any, int], None]) -> threading.Thread:
    def serve() -> None:
        while (job := jobs.get()) is not None:
            call(*job)

    t = threading.Thread(target=serve)
    t.start()
    return t


def adapt_oneshot(loop: str, n: int) -> Callable[[], float]:
    async def main() -> float:
        jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        worker = _worker(jobs, lambda callback, v: callback(v))
        t0 = time.perf_counter()
        for i in range(n):
            callback, result = oneshot()
            jobs.put((callback, i))
            del callback
            assert await result == i
        rate = n / (time.perf_counter() - t0)
        jobs.put(None)
        worker.join()
        return rate

    return lambda: run(loop, main)


def future_set_result(n: int) -> Callable[[], float]:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        worker = _worker(jobs, lambda fut, v: loop.call_soon_threadsafe(fut.set_result, v))
        t0 = time.perf_counter()
        for i in range(n):
            fut = loop.create_future()
            jobs.put((fut, i))
            assert await fut == i
        rate = n / (time.perf_counter() - t0)
        jobs.put(None)
        worker.join()
        return rate

    return lambda: run("asyncio", main)


# -- Portal.call ---------------------------------------------------------------------------


async def _echo(v: int) -> int:
    return v


def adapt_portal(loop: str, n: int) -> Callable[[], float]:
    async def main() -> float:
        portal = Portal()
        done, rate = oneshot[float]()

        def caller() -> None:
            t0 = time.perf_counter()
            for i in range(n):
                assert portal.call(_echo, i) == i
            done(n / (time.perf_counter() - t0))

        thread = threading.Thread(target=caller)
        thread.start()
        value = await rate  # the loop idles between calls, as in the baseline
        thread.join()
        return value

    return lambda: run(loop, main)


def run_coroutine_threadsafe(n: int) -> Callable[[], float]:
    async def main() -> float:
        loop = asyncio.get_running_loop()

        def caller() -> float:
            t0 = time.perf_counter()
            for i in range(n):
                assert asyncio.run_coroutine_threadsafe(_echo(i), loop).result() == i
            return n / (time.perf_counter() - t0)

        return await loop.run_in_executor(None, caller)

    return lambda: run("asyncio", main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--trips", type=int, default=10_000)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.items, args.trips = 1, 20_000, 500
    suffix = "_quick" if args.quick else ""
    ok = True

    n = args.items
    medians = interleave(
        {
            "call_soon_threadsafe(put_nowait) asyncio": call_soon_threadsafe_queue(n),
            "janus asyncio": janus_queue(n),
            "adapt channel asyncio": adapt_channel("asyncio", n),
            "adapt channel uvloop": adapt_channel("uvloop", n),
            "adapt channel trio": adapt_channel("trio", n),
        },
        args.rounds,
    )
    ok &= report(
        f"channel: {n} items from a foreign thread",
        "items/s",
        medians,
        [
            ("adapt channel asyncio", "call_soon_threadsafe(put_nowait) asyncio", 3.0),
            ("adapt channel asyncio", "janus asyncio", 1.0),
        ],
        f"bridges_channel{suffix}",
    )

    n = args.trips
    medians = interleave(
        {
            "call_soon_threadsafe(fut.set_result) asyncio": future_set_result(n),
            "adapt oneshot asyncio": adapt_oneshot("asyncio", n),
            "adapt oneshot uvloop": adapt_oneshot("uvloop", n),
            "adapt oneshot trio": adapt_oneshot("trio", n),
        },
        args.rounds,
    )
    ok &= report(
        f"oneshot: {n} round trips through a worker thread",
        "round trips/s",
        medians,
        [("adapt oneshot asyncio", "call_soon_threadsafe(fut.set_result) asyncio", 1.0)],
        f"bridges_oneshot{suffix}",
    )

    medians = interleave(
        {
            "run_coroutine_threadsafe().result() asyncio": run_coroutine_threadsafe(n),
            "adapt Portal.call asyncio": adapt_portal("asyncio", n),
            "adapt Portal.call uvloop": adapt_portal("uvloop", n),
            "adapt Portal.call trio": adapt_portal("trio", n),
        },
        args.rounds,
    )
    report(
        f"Portal.call: {n} calls from a thread (no target)",
        "calls/s",
        medians,
        [],
        f"bridges_portal{suffix}",
    )
    print("\nall targets met" if ok else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
