"""Subprocess: lines/s read from a child through the subprocess recipe and
``asyncio.create_subprocess_exec``.

The child (``python -c``) writes ``--lines`` lines of 32 bytes to its stdout
as fast as it can; each case starts it, reads line by line until the end and
waits for the exit.  Cases: the recipe's ``spawn`` + ``readline`` on asyncio,
uvloop and trio; ``asyncio.create_subprocess_exec`` + ``readline`` on
asyncio and uvloop; and, for comparison, asyncio's with its pipe enlarged
to the recipe's ``PIPE_SIZE``.  Interleaved in one process, median of the
rounds.

    python benchmarks/bench_subprocess.py              # full run
    python benchmarks/bench_subprocess.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import functools
import os
import sys
import time
from collections.abc import Awaitable, Callable

import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes.subprocess import DEVNULL, PIPE, PIPE_SIZE, spawn

CHILD = """
import sys
line = "x" * 31 + "\\n"
sys.stdout.write(line * int(sys.argv[1]))
"""


async def recipe_lines(count: int) -> float:
    t0 = time.perf_counter()
    async with spawn(
        sys.executable, "-c", CHILD, str(count), stdin=DEVNULL, stderr=DEVNULL
    ) as child:
        assert child.stdout is not None
        n = 0
        while await child.stdout.readline():
            n += 1
        status = await child.wait()
    rate = n / (time.perf_counter() - t0)
    if n != count or status != 0:
        raise RuntimeError(f"{n} lines, status {status}")
    return rate


async def asyncio_lines(count: int, pipe_size: int = 0) -> float:
    t0 = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(count), stdin=DEVNULL, stdout=PIPE, stderr=DEVNULL
    )
    assert child.stdout is not None
    if pipe_size:  # the recipe's pipe size (F_SETPIPE_SZ), for comparison
        transport = child._transport.get_pipe_transport(1)  # type: ignore[attr-defined]
        fcntl.fcntl(transport.get_extra_info("pipe").fileno(), fcntl.F_SETPIPE_SZ, pipe_size)
    n = 0
    while await child.stdout.readline():
        n += 1
    status = await child.wait()
    rate = n / (time.perf_counter() - t0)
    if n != count or status != 0:
        raise RuntimeError(f"{n} lines, status {status}")
    return rate


RUNNERS: dict[str, Callable[[Callable[[int], Awaitable[float]], int], float]] = {
    "asyncio": lambda fn, n: asyncio.run(fn(n)),
    "uvloop": lambda fn, n: uvloop.run(fn(n)),
    "trio": lambda fn, n: trio.run(fn, n),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--lines", type=int, default=100_000, help="lines per child")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 15)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 15)

    def case(fn: Callable[[int], Awaitable[float]], loop: str) -> Callable[[], float]:
        return lambda: RUNNERS[loop](fn, args.lines)

    cases = {f"recipe {loop}": case(recipe_lines, loop) for loop in ("asyncio", "uvloop", "trio")}
    for loop in ("asyncio", "uvloop"):
        cases[f"asyncio subprocess {loop}"] = case(asyncio_lines, loop)
    # the recipe enlarges its pipes to PIPE_SIZE: what that alone gives asyncio
    cases["asyncio subprocess asyncio, recipe's pipe size"] = case(
        functools.partial(asyncio_lines, pipe_size=PIPE_SIZE), "asyncio"
    )
    load = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
    medians = interleave(cases, rounds, shuffle=True)
    targets = [
        ("recipe asyncio", "asyncio subprocess asyncio", 1.5),
        ("recipe uvloop", "asyncio subprocess uvloop", 1.5),
    ]
    save_as = "subprocess_quick" if args.quick else "subprocess"
    title = f"subprocess readline, a child writing {args.lines} lines x {rounds} rounds"
    report(title, "lines/s", medians, targets, save_as=save_as)
    note_load(save_as, load)


if __name__ == "__main__":
    main()
