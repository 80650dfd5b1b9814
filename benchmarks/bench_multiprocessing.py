"""multiprocessing: receiving objects from another process over a ``Pipe()``.

For every case a fresh ``Pipe()`` and a fresh sender process: a plain
blocking ``Connection`` that waits for a go-ahead, then sends ``N`` small
objects (a tuple of an int, a float and a 64-character string) and ends.
The case starts its clock, sends the go-ahead and receives all ``N``.
Objects/s, median of interleaved rounds, higher is better.

Cases: the ``multiprocessing`` recipe (``Conn.recv``) on asyncio, uvloop and
trio; ``asyncio.to_thread(conn.recv)`` (the usual way); adapt's generic
``Async(conn).recv()`` shim (a blocking ``recv`` once ``poll(0)`` is true).

    python benchmarks/bench_multiprocessing.py            # full run (~1 minute)
    python benchmarks/bench_multiprocessing.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes.multiprocessing import Conn

from adapt import Async

SENDER = """
import sys
from multiprocessing.connection import Connection
conn = Connection(int(sys.argv[1]))
n = int(sys.argv[2])
conn.recv()
for i in range(n):
    conn.send((i, 3.25, "x" * 64))
conn.close()
"""


async def recipe(conn: Connection[Any, Any], n: int) -> None:
    c = Conn(conn)
    await c.send("go")
    for _ in range(n):
        await c.recv()
    c.into_inner()


async def to_thread(conn: Connection[Any, Any], n: int) -> None:
    conn.send("go")
    for _ in range(n):
        await asyncio.to_thread(conn.recv)


async def shim(conn: Connection[Any, Any], n: int) -> None:
    a = Async(conn)
    await a.send("go")
    for _ in range(n):
        await a.recv()
    a.into_inner()


Receive = Callable[["Connection[Any, Any]", int], Awaitable[None]]


def run_case(
    run: Callable[[Receive, Connection[Any, Any], int], None], fn: Receive, n: int
) -> float:
    ours, theirs = Pipe()
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(theirs.fileno()), str(n)], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    time.sleep(0.05)  # let the sender start
    try:
        start = time.perf_counter()
        run(fn, ours, n)
        return n / (time.perf_counter() - start)
    finally:
        ours.close()
        sender.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    n_thread = n // 5  # to_thread is slow: fewer objects, the rate is comparable
    rounds = 2 if args.quick else 7
    load_before = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness

    def on_asyncio(fn: Receive, conn: Connection[Any, Any], k: int) -> None:
        asyncio.run(fn(conn, k))  # type: ignore[arg-type]

    def on_uvloop(fn: Receive, conn: Connection[Any, Any], k: int) -> None:
        uvloop.run(fn(conn, k))  # type: ignore[arg-type]

    def on_trio(fn: Receive, conn: Connection[Any, Any], k: int) -> None:
        trio.run(fn, conn, k)

    cases = {
        "adapt recipe (asyncio)": lambda: run_case(on_asyncio, recipe, n),
        "adapt recipe (uvloop)": lambda: run_case(on_uvloop, recipe, n),
        "adapt recipe (trio)": lambda: run_case(on_trio, recipe, n),
        "asyncio.to_thread(conn.recv)": lambda: run_case(on_asyncio, to_thread, n_thread),
        "adapt Async(conn).recv() (asyncio)": lambda: run_case(on_asyncio, shim, n),
    }
    medians = interleave(cases, rounds, shuffle=True)
    suffix = "_quick" if args.quick else ""
    report(
        "multiprocessing: objects from another process over a Pipe()",
        "objects/s",
        medians,
        [
            ("adapt recipe (asyncio)", "asyncio.to_thread(conn.recv)", 2.0),
            ("adapt recipe (uvloop)", "asyncio.to_thread(conn.recv)", 2.0),
        ],
        save_as=f"multiprocessing{suffix}",
    )
    note_load(f"multiprocessing{suffix}", load_before)


if __name__ == "__main__":
    main()
