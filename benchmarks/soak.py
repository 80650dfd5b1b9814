"""Soak: adapt under sustained churn must stay flat in memory, fds and threads.

Each round does the same amount of work through adapt's public API, in one
long-lived event loop:

* **cycles**: wrap a fresh socketpair or pipe, park a wait and cancel it,
  wait for real data, then close -- every third cycle closes the wrapper
  while a task waits on it (the waiter must get ClosedResourceError);
* **connections**: a few thousand socketpairs at once, each with an echo
  task on one end and a client on the other, a few round trips each;
* **offload and bridges**: ``run_sync`` (some cancelled, under both
  cancellation policies), ``@asyncify``, ``CapacityLimiter``, ``oneshot``
  (some callbacks dropped uncalled), ``channel`` fed by a thread,
  ``reader()`` over a file, ``iterate()``, and ``Portal.call`` from a
  worker thread.

After the warm-up rounds it samples, once the pool's idle threads have
exited: RSS, tracemalloc's traced memory, open fds and threads.  It prints
every sample and the totals, and exits 1 when they are not flat.

    python benchmarks/soak.py --loop asyncio --seconds 120
    python benchmarks/soak.py --loop trio --seconds 10 --scale 0.2    # CI-sized
    python benchmarks/soak.py --loop trio --only offload              # one workload
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import resource
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

import adapt

#: allowed growth between the first and the last sample after warm-up
MAX_TRACED_GROWTH = 1 << 20
MAX_RSS_GROWTH = 16 << 20


@dataclass
class Totals:
    cycles: int = 0
    closed_waiters: int = 0
    connections: int = 0
    round_trips: int = 0
    calls: int = 0
    cancelled_calls: int = 0
    bridged: int = 0
    most_concurrent: int = 0
    samples: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: tracemalloc snapshots at the first and the latest sample (``--top``)
    snapshots: list[tracemalloc.Snapshot] = field(default_factory=list)


# -- the work -------------------------------------------------------------------------


async def _cycle(i: int, totals: Totals) -> None:
    """One wait / cancel / close cycle on a fresh socketpair or pipe."""
    if i % 2:
        a, b = socket.socketpair()
        wrapped: Any = adapt.Async(a)
        poke: Callable[[], object] = lambda: b.send(b"x")  # noqa: E731
        take: Callable[[], Awaitable[object]] = lambda: wrapped.recv(1)  # noqa: E731
        peer: Callable[[], None] = b.close
    else:
        r, w = os.pipe()
        wrapped = adapt.Async(r)
        poke = lambda: os.write(w, b"x")  # noqa: E731
        take = lambda: wrapped.read_with(lambda fd: os.read(fd, 1))  # noqa: E731
        peer = lambda: os.close(w)  # noqa: E731
    try:
        with anyio.move_on_after(0):  # cancelled as soon as it parks
            await wrapped.readable()
        if i % 3 == 0:
            # close while a task waits: the waiter gets ClosedResourceError
            async def park() -> None:
                try:
                    await wrapped.readable()
                except adapt.ClosedResourceError:
                    totals.closed_waiters += 1

            async with anyio.create_task_group() as tg:
                tg.start_soon(park)
                await anyio.sleep(0)
                await wrapped.aclose()
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(take)
                await anyio.sleep(0)  # parked in a real wait now
                poke()
    finally:
        await wrapped.aclose()
        peer()
    totals.cycles += 1


async def _connections(n: int, trips: int, totals: Totals) -> None:
    """``n`` concurrent socketpairs, each an echo server and a client."""
    pairs = [socket.socketpair() for _ in range(n)]
    live = [0]

    async def echo(sock: socket.socket) -> None:
        async with adapt.Async(sock) as s:
            while data := await s.recv(64):
                await s.sendall(data)

    async def client(sock: socket.socket) -> None:
        live[0] += 1
        totals.most_concurrent = max(totals.most_concurrent, live[0])
        async with adapt.Async(sock) as c:
            for _ in range(trips):
                await c.sendall(b"ping-0123456789ab")
                got = b""
                while len(got) < 17:
                    got += await c.recv(64)
                totals.round_trips += 1
        live[0] -= 1

    async with anyio.create_task_group() as tg:
        for a, b in pairs:
            tg.start_soon(echo, b)
            tg.start_soon(client, a)
    totals.connections += n


@adapt.asyncify
def _square(x: int) -> int:
    return x * x


async def _offload(scale: float, path: str, totals: Totals) -> None:
    n = max(1, int(2000 * scale))
    limiter = adapt.CapacityLimiter(8)

    async def call(i: int) -> None:
        if i % 10 == 0:  # cancelled while running, under both policies
            with anyio.move_on_after(0.001):
                await adapt.run_sync(time.sleep, 0.003, abandon_on_cancel=bool(i % 20))
            totals.cancelled_calls += 1
        elif i % 3 == 0:
            assert await _square(i) == i * i
        else:
            assert await adapt.run_sync(int, i, limiter=limiter) == i
        totals.calls += 1

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(call, i)

    for i in range(max(1, n // 4)):  # oneshot: called from a thread, or dropped
        callback, result = adapt.oneshot[int]()
        if i % 5:
            await adapt.run_sync(callback, i)
            assert await result == i
        else:
            del callback
            try:
                await result
            except adapt.CallbackDropped:
                pass
        totals.bridged += 1

    send, stream = adapt.channel[int](maxsize=64)

    def produce() -> None:
        for i in range(n):
            send(i)
        send.close()

    producer = threading.Thread(target=produce)
    producer.start()
    got = [item async for item in stream]
    producer.join()
    assert got == list(range(n)), "channel lost or reordered items"
    totals.bridged += n

    async with adapt.reader(open(path, "rb"), chunk_size=16384, buffer_size=65536) as r:
        assert len(await r.read()) == os.path.getsize(path)
    assert [x async for x in adapt.iterate(range(n))] == list(range(n))

    portal = adapt.Portal()

    async def one(x: int) -> int:
        await anyio.sleep(0)
        return x

    def from_thread() -> int:
        return sum(portal.call(one, i) for i in range(max(1, n // 20)))

    await adapt.run_sync(from_thread)
    totals.bridged += max(1, n // 20)


# -- sampling --------------------------------------------------------------------------


_libc = ctypes.CDLL(None)


def _rss() -> int:
    # hand freed heap pages back first: what stays is live memory, not the
    # high-water mark of glibc's per-thread arenas (noise of tens of MiB)
    _libc.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _sample(base_threads: int) -> tuple[int, int, int, int]:
    for _ in range(40):  # idle pool threads exit 0.25 s after their last call
        if threading.active_count() <= base_threads:
            break
        await anyio.sleep(0.05)
    gc.collect()
    return (_rss(), tracemalloc.get_traced_memory()[0], _fds(), threading.active_count())


WORKLOADS = ("cycles", "connections", "offload")


async def soak(
    seconds: float,
    scale: float,
    warmup: int,
    min_rounds: int,
    totals: Totals,
    top: int,
    only: tuple[str, ...] = WORKLOADS,
) -> None:
    cycles = max(3, int(10000 * scale))
    conns = max(2, int(3000 * scale))
    base_threads = threading.active_count()
    with tempfile.NamedTemporaryFile(prefix="adapt-soak-") as tmp:
        tmp.write(os.urandom(1 << 20))
        tmp.flush()
        deadline = time.monotonic() + seconds
        round_no = 0
        while round_no < min_rounds or time.monotonic() < deadline:
            started = time.monotonic()
            if "cycles" in only:
                for i in range(cycles):
                    await _cycle(i, totals)
            if "connections" in only:
                await _connections(conns, 5, totals)
            if "offload" in only:
                await _offload(scale, tmp.name, totals)
            round_no += 1
            if round_no > warmup:
                totals.samples.append(await _sample(base_threads))
                if top:
                    totals.snapshots[1:] = []
                    totals.snapshots.append(tracemalloc.take_snapshot())
                rss, traced, fds, threads = totals.samples[-1]
                print(
                    f"round {round_no}: {time.monotonic() - started:5.1f} s  "
                    f"rss {rss / 2**20:7.1f} MiB  traced {traced / 2**20:6.2f} MiB  "
                    f"fds {fds}  threads {threads}",
                    flush=True,
                )


def verdict(totals: Totals) -> list[str]:
    """What is not flat (empty: flat)."""
    first, last = totals.samples[0], totals.samples[-1]
    problems = []
    # RSS is noisy (allocator, peak concurrency): its highest value in the
    # second half of the run must not exceed the first half's by much
    half = max(1, len(totals.samples) // 2)
    rss_growth = max(s[0] for s in totals.samples[half:]) - max(s[0] for s in totals.samples[:half])
    if rss_growth > MAX_RSS_GROWTH:
        problems.append(f"RSS grew by {rss_growth / 2**20:.1f} MiB")
    if last[1] - first[1] > MAX_TRACED_GROWTH:
        problems.append(f"traced memory grew by {(last[1] - first[1]) / 2**10:.0f} KiB")
    if any(s[2] != first[2] for s in totals.samples):
        problems.append(f"open fds changed: {[s[2] for s in totals.samples]}")
    if any(s[3] > first[3] for s in totals.samples):
        problems.append(f"threads grew: {[s[3] for s in totals.samples]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    parser.add_argument("--seconds", type=float, default=60.0, help="run rounds this long")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="work per round (1.0: 10000 cycles, 3000 connections, 2000 calls)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="rounds before sampling")
    parser.add_argument("--debug", action="store_true", help="asyncio debug mode")
    parser.add_argument(
        "--top", type=int, default=0, help="print the N source lines whose traced memory grew most"
    )
    parser.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help="comma-separated workloads to run (default: all of %(default)s)",
    )
    args = parser.parse_args()
    only = tuple(args.only.split(","))
    if not set(only) <= set(WORKLOADS):
        parser.error(f"--only takes {', '.join(WORKLOADS)}, not {args.only!r}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # two fds per connection
    tracemalloc.start()
    totals = Totals()
    started = time.monotonic()
    run = lambda: soak(  # noqa: E731
        args.seconds, args.scale, args.warmup, args.warmup + 3, totals, args.top, only
    )
    if args.loop == "trio":
        anyio.run(run, backend="trio")
    else:
        options = {"use_uvloop": args.loop == "uvloop", "debug": args.debug}
        anyio.run(run, backend="asyncio", backend_options=options)
    elapsed = time.monotonic() - started
    print(
        f"{args.loop}: {elapsed:.0f} s, {totals.cycles} wait/cancel/close cycles "
        f"({totals.closed_waiters} closed under a waiter), {totals.connections} connections "
        f"({totals.most_concurrent} at once, {totals.round_trips} round trips), "
        f"{totals.calls} offloaded calls ({totals.cancelled_calls} cancelled), "
        f"{totals.bridged} bridged values"
    )
    first, last = totals.samples[0], totals.samples[-1]
    print(
        f"after warm-up: rss {first[0] / 2**20:.1f} -> {last[0] / 2**20:.1f} MiB, "
        f"traced {first[1] / 2**10:.0f} -> {last[1] / 2**10:.0f} KiB, "
        f"fds {first[2]} -> {last[2]}, threads {first[3]} -> {last[3]}"
    )
    if len(totals.snapshots) == 2:
        for stat in totals.snapshots[1].compare_to(totals.snapshots[0], "lineno")[: args.top]:
            print(f"  {stat}")
    problems = verdict(totals)
    print("FLAT" if not problems else "NOT FLAT: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
