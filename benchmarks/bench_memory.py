"""Memory: 10,000 wrapped idle sockets, each with a task parked in a read.

For every loop (asyncio, uvloop, trio) and approach (adapt's
``await Async(sock).recv(1)`` and, for comparison, the loop's own way to
park a task on a socket: ``loop.sock_recv`` on asyncio and uvloop, a bare
``trio.lowlevel.wait_readable`` on trio), a fresh child process:

1. opens the sockets: both ends of ``--n / 2`` unix socketpairs, so that
   ``--n`` sockets take ``--n`` fds (this machine's hard RLIMIT_NOFILE is
   20,000, too few for 10,000 pairs);
2. parks a few sockets first, so one-time costs (imports, per-loop state)
   are paid before the baseline;
3. takes the baseline, then wraps every socket and starts one task per
   socket that waits in a read, and lets every task reach its wait;
4. measures the growth, then closes everything.

"Per socket" is therefore everything an idle wrapped socket costs beyond
the ``socket.socket`` itself: the ``Async`` wrapper, the per-fd watch and
its loop registration, the task (with its coroutine frames, the pending
future or trio's wait state, the op's closure).  A third case parks bare
tasks with no socket (on a future on asyncio, ``trio.sleep_forever()`` on
trio); subtracting it from adapt's figure gives adapt's share: what the
wrapper and the wait add to a task the program has anyway.  Python memory comes from
``tracemalloc`` (allocations still alive); RSS growth is measured in a
separate child without tracemalloc, whose own bookkeeping would inflate it.

    python benchmarks/bench_memory.py             # full run
    python benchmarks/bench_memory.py --quick     # smoke run (1,000 sockets)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import socket
import statistics
import subprocess
import sys
import tracemalloc
from typing import Any

from _harness import rss_bytes, save

from adapt import Async, ClosedResourceError

TARGET = 2500  # bytes of Python memory per socket, adapt on every loop
WARMUP = 8  # sockets parked before the baseline

LOOPS = ("asyncio", "uvloop", "trio")
APPROACHES = ("adapt", "native", "task")
NAMES = {
    ("asyncio", "native"): "asyncio sock_recv",
    ("uvloop", "native"): "uvloop sock_recv",
    ("trio", "native"): "trio wait_readable",
    ("asyncio", "task"): "asyncio bare task",
    ("uvloop", "task"): "uvloop bare task",
    ("trio", "task"): "trio bare task",
}


def open_sockets(n: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    for _ in range(n // 2):
        socks.extend(socket.socketpair())
    for s in socks:
        s.setblocking(False)
    return socks


class Meter:
    """Growth of Python memory (tracemalloc) or of RSS since :meth:`start`."""

    def __init__(self, traced: bool) -> None:
        self.traced = traced
        self.base = 0

    def start(self) -> None:
        gc.collect()
        if self.traced:
            tracemalloc.start()
        else:
            self.base = rss_bytes()

    def stop(self) -> int:
        gc.collect()
        if self.traced:
            grown = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return grown
        return rss_bytes() - self.base


# -- asyncio and uvloop -----------------------------------------------------


async def asyncio_park(approach: str, socks: list[socket.socket], meter: Meter) -> int:
    loop = asyncio.get_running_loop()
    parked = 0
    wrappers: list[Any] = []

    async def park_adapt(a: Any) -> None:
        nonlocal parked
        parked += 1
        try:
            await a.recv(1)
        except ClosedResourceError:
            pass

    async def park_native(s: socket.socket) -> None:
        nonlocal parked
        parked += 1
        await loop.sock_recv(s, 1)

    async def park_bare() -> None:
        nonlocal parked
        parked += 1
        await loop.create_future()

    async def park_all(batch: list[socket.socket]) -> list[asyncio.Task[None]]:
        start = parked
        if approach == "adapt":
            new = [Async(s) for s in batch]
            wrappers.extend(new)
            tasks = [asyncio.create_task(park_adapt(a)) for a in new]
        elif approach == "native":
            tasks = [asyncio.create_task(park_native(s)) for s in batch]
        else:
            tasks = [asyncio.create_task(park_bare()) for _ in batch]
        while parked < start + len(batch):
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # every task is now suspended in its wait
        return tasks

    tasks = await park_all(socks[:WARMUP])
    meter.start()
    tasks += await park_all(socks[WARMUP:])
    grown = meter.stop()

    for a in wrappers:
        a.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return grown


# -- trio -----------------------------------------------------------------


async def trio_park(approach: str, socks: list[socket.socket], meter: Meter) -> int:
    import trio

    parked = 0
    wrappers: list[Any] = []

    async def park_adapt(a: Any) -> None:
        nonlocal parked
        parked += 1
        try:
            await a.recv(1)
        except ClosedResourceError:
            pass

    async def park_native(s: socket.socket) -> None:
        nonlocal parked
        parked += 1
        await trio.lowlevel.wait_readable(s)

    async def park_bare() -> None:
        nonlocal parked
        parked += 1
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:

        async def park_all(batch: list[socket.socket]) -> None:
            start = parked
            for s in batch:
                if approach == "adapt":
                    a = Async(s)
                    wrappers.append(a)
                    nursery.start_soon(park_adapt, a)
                elif approach == "native":
                    nursery.start_soon(park_native, s)
                else:
                    nursery.start_soon(park_bare)
            while parked < start + len(batch):
                await trio.sleep(0)
            await trio.sleep(0)

        await park_all(socks[:WARMUP])
        meter.start()
        await park_all(socks[WARMUP:])
        grown = meter.stop()
        for a in wrappers:
            a.close()
        nursery.cancel_scope.cancel()
    return grown


# -- one measurement, in a child process ------------------------------------


def child(loop: str, approach: str, n: int, traced: bool) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + WARMUP + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + WARMUP + 1000), hard))
    socks = open_sockets(n + WARMUP)
    meter = Meter(traced)
    if loop == "trio":
        import trio

        grown = trio.run(trio_park, approach, socks, meter)
    elif loop == "uvloop":
        import uvloop

        grown = uvloop.run(asyncio_park(approach, socks, meter))
    else:
        grown = asyncio.run(asyncio_park(approach, socks, meter))
    for s in socks:
        s.close()
    print(json.dumps({"bytes": grown, "n": n}))


def measure(loop: str, approach: str, n: int, traced: bool) -> float:
    cmd = [sys.executable, __file__, "--child", loop, approach, str(n), str(int(traced))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return float(result["bytes"]) / result["n"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--n", type=int, help="sockets (default 10000)")
    parser.add_argument("--rounds", type=int, help="RSS rounds per case (default 3)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        loop, approach, n, traced = args.child
        child(loop, approach, int(n), bool(int(traced)))
        return
    n = args.n or (1000 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 3)

    python: dict[str, float] = {}
    rss: dict[str, float] = {}
    for loop in LOOPS:
        for approach in APPROACHES:
            name = f"adapt {loop}" if approach == "adapt" else NAMES[loop, approach]
            python[name] = measure(loop, approach, n, traced=True)
            rss[name] = statistics.median(
                measure(loop, approach, n, traced=False) for _ in range(rounds)
            )
            print(
                f"  {name:<24} python {python[name]:8.0f} B  rss {rss[name]:8.0f} B",
                file=sys.stderr,
                flush=True,
            )

    print(f"\n== memory per idle socket with a task parked in a read, {n} sockets")
    print(f"  {'':<24} {'python (tracemalloc)':>22} {'RSS growth':>12}")
    for name in python:
        print(f"  {name:<24} {python[name]:20.0f} B {rss[name]:10.0f} B")
    targets = []
    for loop in LOOPS:
        name, bare = f"adapt {loop}", NAMES[loop, "task"]
        total, share = python[name], python[name] - python[bare]
        for what, value in (("all, task included", total), ("adapt's share", share)):
            met = value <= TARGET
            targets.append({"case": name, "what": what, "maximum": TARGET, "value": value})
            print(
                f"  {name}, {what}: {value:.0f} B per socket "
                f"(target <= {TARGET} B) {'OK' if met else 'MISSED'}"
            )
    save(
        "memory_quick" if args.quick else "memory",
        {
            "title": f"memory per idle socket, task parked in a read ({n} sockets)",
            "unit": "bytes per socket",
            "python": python,
            "rss": rss,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
