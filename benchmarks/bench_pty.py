"""pty: request/response round trips/s with ``bc`` through the pty recipe
and pexpect's own ``expect(..., async_=True)``.

Each case starts ``bc -q`` on a pty, makes one untimed round trip, then
times ``--trips`` round trips: send ``i+1``, expect the answer line.
pexpect's ``delaybeforesend`` (a 50 ms sleep per send, on the loop) is set
to ``None`` for its cases, so they measure pexpect's reading, not that
sleep.  Cases: ``Pty.spawn`` on asyncio, uvloop and trio; ``Pty.adopt`` of
a ``pexpect.spawn`` on asyncio; pexpect ``async_=True`` on asyncio and
uvloop.  Interleaved in one process, median of the rounds.

    python benchmarks/bench_pty.py              # full run
    python benchmarks/bench_pty.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import pexpect
import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes.pty import Pty

ENV = {**os.environ, "TERM": "dumb"}


async def _recipe_trips(bc: Pty, trips: int) -> float:
    await bc.sendline("0+1")
    await bc.expect(rb"\r\n1\r\n")
    t0 = time.perf_counter()
    for i in range(1, trips + 1):
        await bc.sendline(b"%d+1" % i)
        await bc.expect(rb"\r\n%d\r\n" % (i + 1))
    return trips / (time.perf_counter() - t0)


async def recipe_spawn(trips: int) -> float:
    async with Pty.spawn("bc", "-q", env=ENV) as bc:
        rate = await _recipe_trips(bc, trips)
        await bc.sendline("quit")
    return rate


async def recipe_adopt(trips: int) -> float:
    child = pexpect.spawn("bc", ["-q"], env=ENV)
    try:
        async with Pty.adopt(child) as bc:
            rate = await _recipe_trips(bc, trips)
            await bc.sendline("quit")
            await bc.wait()
    finally:
        child.close()
    return rate


async def pexpect_async(trips: int) -> float:
    child = pexpect.spawn("bc", ["-q"], env=ENV)
    child.delaybeforesend = None
    try:
        child.sendline("0+1")
        await child.expect(r"\r\n1\r\n", async_=True)
        t0 = time.perf_counter()
        for i in range(1, trips + 1):
            child.sendline(f"{i}+1")
            await child.expect(rf"\r\n{i + 1}\r\n", async_=True)
        rate = trips / (time.perf_counter() - t0)
        child.sendline("quit")
    finally:
        child.close()
    return rate


RUNNERS: dict[str, Callable[[Callable[[int], Awaitable[float]], int], float]] = {
    "asyncio": lambda fn, n: asyncio.run(fn(n)),
    "uvloop": lambda fn, n: uvloop.run(fn(n)),
    "trio": lambda fn, n: trio.run(fn, n),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--trips", type=int, help="round trips per run (default 2,000)")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    parser.add_argument(
        "--cpus",
        choices=["same", "free"],
        default="same",
        help="same: this process and bc share one CPU under SCHED_BATCH, so a "
        "round trip costs both sides' CPU time and no cross-CPU wake-up (see "
        "_harness.Peer); free: leave placement to the scheduler",
    )
    args = parser.parse_args()
    if args.cpus == "same":  # children (bc) inherit both
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    trips = args.trips or (200 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 9)

    def case(fn: Callable[[int], Awaitable[float]], loop: str) -> Callable[[], float]:
        return lambda: RUNNERS[loop](fn, trips)

    cases = {
        f"recipe spawn {loop}": case(recipe_spawn, loop) for loop in ("asyncio", "uvloop", "trio")
    }
    cases["recipe adopt(pexpect) asyncio"] = case(recipe_adopt, "asyncio")
    for loop in ("asyncio", "uvloop"):
        cases[f"pexpect async_=True {loop}"] = case(pexpect_async, loop)
    load = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
    medians = interleave(cases, rounds, shuffle=True)
    title = f"pty round trips with bc, {trips} x {rounds} rounds, cpus={args.cpus}"
    targets = [
        ("recipe spawn asyncio", "pexpect async_=True asyncio", 1.0),
        ("recipe adopt(pexpect) asyncio", "pexpect async_=True asyncio", 1.0),
        ("recipe spawn uvloop", "pexpect async_=True uvloop", 1.0),
    ]
    save_as = "pty_quick" if args.quick else "pty"
    report(
        title,
        "round trips/s",
        medians,
        targets,
        save_as=save_as,
    )
    note_load(save_as, load)


if __name__ == "__main__":
    main()
