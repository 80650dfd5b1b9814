"""inotify: events/s through the inotify recipe and asyncinotify.

Two measurements, each interleaved in one process (median of the rounds):

* **live**: a producer process writes two files in turn (no two equal
  events in a row, so the kernel merges none) ``--live`` times; the case
  counts MODIFY events until it has them all.
* **drain**: ``--queued`` events are queued first; the case reads them all.

``max_queued_events`` is raised for the run if it is lower (root only), and
restored.

Cases: the recipe's ``Watcher`` on asyncio, uvloop and trio; asyncinotify
(asyncio only) on asyncio and uvloop.

    python benchmarks/bench_inotify.py              # full run
    python benchmarks/bench_inotify.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncinotify
import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes.inotify import Watcher
from inotify_simple import flags

LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")

PRODUCER = """
import os, sys
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fa, fb = os.open(a, os.O_WRONLY), os.open(b, os.O_WRONLY)
sys.stdin.read(1)
for i in range(n // 2):
    os.write(fa, b"x")
    os.write(fb, b"x")
"""


def _files(folder: str) -> tuple[str, str]:
    a, b = os.path.join(folder, "a"), os.path.join(folder, "b")
    for path in (a, b):
        Path(path).touch()
    return a, b


def _queue(a: str, b: str, count: int) -> None:
    fa, fb = os.open(a, os.O_WRONLY), os.open(b, os.O_WRONLY)
    for _ in range(count // 2):
        os.write(fa, b"x")
        os.write(fb, b"x")
    os.close(fa)
    os.close(fb)


# -- consumers: count `count` events, return events/s from `start()` on ------


async def recipe_count(folder: str, count: int, start: Callable[[], None]) -> float:
    async with Watcher() as watcher:
        watcher.add_watch(folder, flags.MODIFY)
        start()  # the producer goes, or the events are queued
        t0 = time.perf_counter()
        seen = 0
        while seen < count:
            seen += len(await watcher.read())
        return count / (time.perf_counter() - t0)


async def asyncinotify_count(folder: str, count: int, start: Callable[[], None]) -> float:
    with asyncinotify.Inotify() as inotify:
        inotify.add_watch(folder, asyncinotify.Mask.MODIFY)
        start()  # the producer goes, or the events are queued
        t0 = time.perf_counter()
        seen = 0
        async for _ in inotify:
            seen += 1
            if seen == count:
                break
        return count / (time.perf_counter() - t0)


Consumer = Callable[[str, int, Callable[[], None]], Awaitable[float]]
Runner = Callable[[Consumer, str, int, Callable[[], None]], float]

RUNNERS: dict[str, Runner] = {
    "asyncio": lambda fn, *a: asyncio.run(fn(*a)),
    "uvloop": lambda fn, *a: uvloop.run(fn(*a)),
    "trio": lambda fn, *a: trio.run(fn, *a),
}
CONSUMERS: list[tuple[str, Consumer, tuple[str, ...]]] = [
    ("recipe", recipe_count, ("asyncio", "uvloop", "trio")),
    ("asyncinotify", asyncinotify_count, ("asyncio", "uvloop")),
]


def live_case(consume: Consumer, run: Runner, count: int) -> Callable[[], float]:
    def one() -> float:
        with tempfile.TemporaryDirectory() as folder:
            a, b = _files(folder)
            producer = subprocess.Popen(
                [sys.executable, "-c", PRODUCER, a, b, str(count)], stdin=subprocess.PIPE
            )
            assert producer.stdin is not None
            stdin = producer.stdin

            def start() -> None:
                stdin.write(b"g")
                stdin.flush()

            try:
                return run(consume, folder, count, start)
            finally:
                stdin.close()
                producer.wait()

    return one


def drain_case(consume: Consumer, run: Runner, count: int) -> Callable[[], float]:
    def one() -> float:
        with tempfile.TemporaryDirectory() as folder:
            a, b = _files(folder)
            return run(consume, folder, count, lambda: _queue(a, b, count))

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--live", type=int, help="events per live run (default 200,000)")
    parser.add_argument("--queued", type=int, default=60_000, help="events to drain")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    args = parser.parse_args()
    live = args.live or (20_000 if args.quick else 200_000)
    rounds = args.rounds or (1 if args.quick else 9)

    load = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
    live_cases, drain_cases = {}, {}
    for name, consume, loops in CONSUMERS:
        for loop in loops:
            live_cases[f"{name} {loop}"] = live_case(consume, RUNNERS[loop], live)
            drain_cases[f"{name} {loop}"] = drain_case(consume, RUNNERS[loop], args.queued)
    targets_live = [
        ("recipe asyncio", "asyncinotify asyncio", 1.2),
        ("recipe uvloop", "asyncinotify uvloop", 1.2),
    ]
    targets_drain = [
        ("recipe asyncio", "asyncinotify asyncio", 3.0),
        ("recipe uvloop", "asyncinotify uvloop", 3.0),
    ]
    quick = "_quick" if args.quick else ""
    # a producer faster than its consumer must not overflow the queue either
    old = int(LIMIT.read_text())
    need = max(live, args.queued) + 10
    if old < need:
        LIMIT.write_text(str(need))  # root only; restored below
    try:
        live_medians = interleave(live_cases, rounds, shuffle=True)
        drain_medians = interleave(drain_cases, rounds, shuffle=True)
    finally:
        LIMIT.write_text(str(old))
    report(
        f"inotify live, {live} events from a producer process x {rounds} rounds",
        "events/s",
        live_medians,
        targets_live,
        save_as=f"inotify_live{quick}",
    )
    report(
        f"inotify drain, {args.queued} queued events x {rounds} rounds",
        "events/s",
        drain_medians,
        targets_drain,
        save_as=f"inotify_drain{quick}",
    )
    note_load(f"inotify_drain{quick}", load)


if __name__ == "__main__":
    main()
