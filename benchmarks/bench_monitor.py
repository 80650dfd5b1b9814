"""The stall monitor's overhead: the same work with ``adapt.monitor()`` on and off.

Two workloads, each on asyncio, uvloop and trio, with the monitor off and on,
all interleaved in one process (each case on a fresh loop):

* **ping-pong**: 64-byte round trips through ``Async(sock)`` to an echo peer
  in another process (``bench_pingpong.adapt_loop``), round trips/s;
* **offload**: sequential ``run_sync`` calls of a trivial function, calls/s.

A loop that never stalls pays for the monitor's heartbeat only (a timer
callback every ``threshold / 4``) and for the watchdog thread waking as
often to see it; the targets are on/off >= 0.98 everywhere.

    python benchmarks/bench_monitor.py            # full run (~2 minutes)
    python benchmarks/bench_monitor.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import socket
import time
from collections.abc import Awaitable, Callable

import trio
import uvloop
from _harness import (
    Case,
    add_peer_options,
    interleave,
    interleave_on_peer,
    note_load,
    on_asyncio,
    on_trio,
    on_uvloop,
    pin_malloc,
    report,
)
from bench_pingpong import adapt_loop

import adapt

LOOPS = ("asyncio", "uvloop", "trio")


def _monitored(
    fn: Callable[[socket.socket, int], Awaitable[float]],
) -> Callable[..., Awaitable[float]]:
    async def run(sock: socket.socket, n: int) -> float:
        async with adapt.monitor():
            return await fn(sock, n)

    return run


def work(x: int) -> int:
    return x


async def offload(n: int) -> float:
    call = functools.partial(adapt.run_sync, work, 1)
    await call()  # warm the pool
    t0 = time.perf_counter()
    for _ in range(n):
        await call()
    return n / (time.perf_counter() - t0)


async def offload_monitored(n: int) -> float:
    async with adapt.monitor():
        return await offload(n)


def run_on(loop: str, main: Callable[[int], Awaitable[float]], n: int) -> float:
    if loop == "trio":
        return trio.run(main, n)
    if loop == "uvloop":
        return uvloop.run(main(n))  # type: ignore[arg-type]
    return asyncio.run(main(n))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    add_peer_options(parser, "same")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 9)
    trips = 1000 if args.quick else 20_000
    calls = 1000 if args.quick else 10_000
    suffix = "_quick" if args.quick else ""

    load = os.getloadavg()[0]
    pin_malloc("warm")
    runners = {"asyncio": on_asyncio, "uvloop": on_uvloop, "trio": on_trio}
    pingpong = {}
    for loop in LOOPS:
        pingpong[f"ping-pong off ({loop})"] = runners[loop](adapt_loop)
        pingpong[f"ping-pong on ({loop})"] = runners[loop](_monitored(adapt_loop))
    medians = interleave_on_peer(
        pingpong, cpus=args.cpus, mode="echo", size=trips, rounds=rounds, only=args.only
    )
    targets = [(f"ping-pong on ({loop})", f"ping-pong off ({loop})", 0.98) for loop in LOOPS]
    report(
        f"monitor overhead: ping-pong, {trips} round trips x {rounds} rounds",
        "round trips/s",
        medians,
        targets,
        save_as=f"monitor_pingpong{suffix}",
    )
    note_load(f"monitor_pingpong{suffix}", load)

    load = os.getloadavg()[0]
    cases: dict[str, Case] = {}
    for loop in LOOPS:
        cases[f"offload off ({loop})"] = functools.partial(run_on, loop, offload, calls)
        cases[f"offload on ({loop})"] = functools.partial(run_on, loop, offload_monitored, calls)
    if args.only:
        cases = {name: case for name, case in cases.items() if args.only in name}
    medians = interleave(cases, rounds, shuffle=True)
    targets = [(f"offload on ({loop})", f"offload off ({loop})", 0.98) for loop in LOOPS]
    report(
        f"monitor overhead: run_sync, {calls} sequential calls x {rounds} rounds",
        "calls/s",
        medians,
        targets,
        save_as=f"monitor_offload{suffix}",
    )
    note_load(f"monitor_offload{suffix}", load)


if __name__ == "__main__":
    main()
