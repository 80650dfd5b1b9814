"""Readline: lines/s through ``BufferedStream.readline`` and asyncio streams.

The peer process sends ``--lines`` lines of ``--size`` bytes over a unix
socketpair, in 64 KiB ``sendall`` calls; each case sends a one-byte
go-ahead, then reads line by line until the end of the stream.  The cases:
``BufferedStream(sock).readline()`` on asyncio, uvloop and trio, and
``asyncio.open_connection(sock=...)`` + ``StreamReader.readline()`` on
asyncio and uvloop.  Interleaved in one process, median of the rounds.

    python benchmarks/bench_readline.py              # full run
    python benchmarks/bench_readline.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections.abc import Callable

from _harness import (
    add_peer_options,
    interleave_on_peer,
    note_load,
    on_asyncio,
    on_trio,
    on_uvloop,
    pin_malloc,
    report,
)

from adapt import BufferedStream


async def adapt_lines(sock: socket.socket, count: int) -> float:
    """The same code on asyncio, uvloop and trio."""
    async with BufferedStream(sock) as stream:
        t0 = time.perf_counter()
        await stream.write_all(b"g")
        n = 0
        while await stream.readline():
            n += 1
        elapsed = time.perf_counter() - t0
    if n != count:
        raise EOFError(f"{count - n} lines missing")
    return n / elapsed


async def asyncio_stream_lines(sock: socket.socket, count: int) -> float:
    reader, writer = await asyncio.open_connection(sock=sock)
    t0 = time.perf_counter()
    writer.write(b"g")
    await writer.drain()
    n = 0
    while await reader.readline():
        n += 1
    elapsed = time.perf_counter() - t0
    writer.close()
    await writer.wait_closed()
    if n != count:
        raise EOFError(f"{count - n} lines missing")
    return n / elapsed


CASES: dict[str, Callable[[socket.socket, int], float]] = {
    "adapt BufferedStream asyncio": on_asyncio(adapt_lines),
    "adapt BufferedStream uvloop": on_uvloop(adapt_lines),
    "adapt BufferedStream trio": on_trio(adapt_lines),
    "asyncio streams": on_asyncio(asyncio_stream_lines),
    "uvloop asyncio streams": on_uvloop(asyncio_stream_lines),
}

TARGETS = [
    ("adapt BufferedStream asyncio", "asyncio streams", 1.0),
    ("adapt BufferedStream uvloop", "uvloop asyncio streams", 1.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--lines", type=int, help="lines per case run (default 1,000,000)")
    parser.add_argument("--size", type=int, default=64, help="bytes per line (default 64)")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    add_peer_options(parser, "split")
    args = parser.parse_args()
    count = args.lines or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 9)

    load = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
    medians = interleave_on_peer(
        CASES,
        cpus=args.cpus,
        mode=f"lines {count} {args.size}",
        size=count,
        rounds=rounds,
        only=args.only,
    )
    title = f"readline, {count} lines of {args.size} bytes x {rounds} rounds"
    save_as = "readline_quick" if args.quick else "readline"
    report(title, "lines/s", medians, TARGETS, save_as=save_as)
    note_load(save_as, load)


if __name__ == "__main__":
    main()
