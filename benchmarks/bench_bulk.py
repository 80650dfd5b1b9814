"""Bulk: receive 256 MiB through a unix socketpair, in 64 KiB reads.

Direction: the peer process sends, we receive.  For every case the peer
gets a fresh socketpair, waits for a one-byte go-ahead, then writes the
whole volume with blocking ``sendall`` calls of 64 KiB; the case starts its
clock, sends the go-ahead and reads into a preallocated 64 KiB buffer until
the whole volume arrived.  Throughput is MiB/s; every case runs interleaved
in one process and reports the median of its rounds.  The peer and this
process are pinned to different CPUs, so both sides run in parallel.

    python benchmarks/bench_bulk.py              # full run
    python benchmarks/bench_bulk.py --quick      # smoke run
    python benchmarks/bench_bulk.py --mib 64     # a smaller volume
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable

import trio
from _harness import (
    add_peer_options,
    interleave_on_peer,
    note_load,
    on_asyncio,
    on_trio,
    on_uvloop,
    report,
)

from adapt import Async

CHUNK = 64 * 1024
MiB = 1024 * 1024


async def adapt_loop(sock: socket.socket, total: int) -> float:
    """The same code on asyncio, uvloop and trio."""
    buf = bytearray(CHUNK)
    async with Async(sock) as a:
        t0 = time.perf_counter()
        await a.sendall(b"g")
        left = total
        while left:
            n = await a.recv_into(buf)
            if not n:
                raise EOFError(f"{left} bytes missing")
            left -= n
        return total / MiB / (time.perf_counter() - t0)


async def sock_recv_into_loop(sock: socket.socket, total: int) -> float:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    buf = bytearray(CHUNK)
    t0 = time.perf_counter()
    await loop.sock_sendall(sock, b"g")
    left = total
    while left:
        n = await loop.sock_recv_into(sock, buf)
        if not n:
            raise EOFError(f"{left} bytes missing")
        left -= n
    return total / MiB / (time.perf_counter() - t0)


async def trio_raw_loop(sock: socket.socket, total: int) -> float:
    wait_readable = trio.lowlevel.wait_readable
    sock.setblocking(False)
    buf = bytearray(CHUNK)
    t0 = time.perf_counter()
    sock.send(b"g")
    left = total
    while left:
        try:
            n = sock.recv_into(buf)
        except BlockingIOError:
            await wait_readable(sock)
            continue
        if not n:
            raise EOFError(f"{left} bytes missing")
        left -= n
    return total / MiB / (time.perf_counter() - t0)


def blocking_thread(sock: socket.socket, total: int) -> float:
    rates: list[float] = []

    def work() -> None:
        buf = bytearray(CHUNK)
        t0 = time.perf_counter()
        sock.sendall(b"g")
        left = total
        while left:
            n = sock.recv_into(buf)
            if not n:
                raise EOFError(f"{left} bytes missing")
            left -= n
        rates.append(total / MiB / (time.perf_counter() - t0))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return rates[0]


CASES: dict[str, Callable[[socket.socket, int], float]] = {
    "adapt asyncio": on_asyncio(adapt_loop),
    "adapt uvloop": on_uvloop(adapt_loop),
    "adapt trio": on_trio(adapt_loop),
    "asyncio sock_recv_into": on_asyncio(sock_recv_into_loop),
    "uvloop sock_recv_into": on_uvloop(sock_recv_into_loop),
    "trio wait_readable loop": on_trio(trio_raw_loop),
    "blocking socket in a thread": blocking_thread,
}

TARGETS = [
    ("adapt asyncio", "blocking socket in a thread", 0.9),
    ("adapt uvloop", "blocking socket in a thread", 0.9),
    ("adapt trio", "blocking socket in a thread", 0.9),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--mib", type=int, help="MiB per case run (default 256)")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 15)")
    add_peer_options(parser, "split")
    args = parser.parse_args()
    mib = args.mib or (16 if args.quick else 256)
    rounds = args.rounds or (1 if args.quick else 15)
    total = mib * MiB

    load = os.getloadavg()[0]
    medians = interleave_on_peer(
        CASES,
        cpus=args.cpus,
        mode=f"source {total} {CHUNK}",
        size=total,
        rounds=rounds,
        only=args.only,
    )

    title = f"bulk receive, {mib} MiB in {CHUNK // 1024} KiB reads x {rounds} rounds"
    save_as = "bulk_quick" if args.quick else "bulk"
    report(title, "MiB/s", medians, TARGETS, save_as=save_as)
    note_load(save_as, load)


if __name__ == "__main__":
    main()
