"""Ping-pong: 64-byte round trips to an echo peer in another process.

Every case gets a fresh unix socketpair whose other end is served by a
blocking echo loop in a separate process (see ``_harness.Peer``), starts a
fresh event loop, and times ``--n`` round trips inside it: send 64 bytes,
receive until the 64 bytes came back.  All cases run interleaved in one
process; each reports the median of its rounds, in round trips per second.
glibc's policy for large blocks is pinned (see ``_harness.pin_malloc``):
asyncio streams and Protocol run twice, with the heap warm and fresh.

    python benchmarks/bench_pingpong.py            # full run (~2 minutes)
    python benchmarks/bench_pingpong.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable

import anyio
import trio
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

from adapt import Async

MSG = b"x" * 64
SIZE = len(MSG)


# -- adapt ----------------------------------------------------------------


async def adapt_loop(sock: socket.socket, n: int) -> float:
    """The same code on asyncio, uvloop and trio."""
    async with Async(sock) as a:
        t0 = time.perf_counter()
        for _ in range(n):
            sent = await a.send(MSG)
            if sent < SIZE:
                await a.sendall(MSG[sent:])
            got = await a.recv(SIZE)
            while len(got) < SIZE:
                got += await a.recv(SIZE - len(got))
        return n / (time.perf_counter() - t0)


# -- asyncio peers --------------------------------------------------------


async def sock_recv_loop(sock: socket.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    t0 = time.perf_counter()
    for _ in range(n):
        await loop.sock_sendall(sock, MSG)
        got = await loop.sock_recv(sock, SIZE)
        while len(got) < SIZE:
            got += await loop.sock_recv(sock, SIZE - len(got))
    return n / (time.perf_counter() - t0)


async def streams_loop(sock: socket.socket, n: int) -> float:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    t0 = time.perf_counter()
    for _ in range(n):
        writer.write(MSG)
        await writer.drain()
        await reader.readexactly(SIZE)
    rate = n / (time.perf_counter() - t0)
    writer.close()
    await writer.wait_closed()
    return rate


class _Client(asyncio.Protocol):
    """A protocol that completes a future once a whole message came back."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= SIZE and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError())


async def protocol_loop(sock: socket.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_unix_connection(_Client, sock=sock)
    t0 = time.perf_counter()
    for _ in range(n):
        proto.waiter = loop.create_future()
        transport.write(MSG)
        await proto.waiter
        del proto.buf[:SIZE]
    rate = n / (time.perf_counter() - t0)
    transport.close()
    return rate


def readiness_loop(
    wait_readable: Callable[[socket.socket], Awaitable[None]],
    wait_writable: Callable[[socket.socket], Awaitable[None]],
) -> Callable[[socket.socket, int], Awaitable[float]]:
    """The hand-written readiness loop over a library's ``wait_readable``:
    try ``send``/``recv``; on ``BlockingIOError``, wait and try again."""

    async def loop(sock: socket.socket, n: int) -> float:
        sock.setblocking(False)
        t0 = time.perf_counter()
        for _ in range(n):
            while True:
                try:
                    sent = sock.send(MSG)
                    break
                except BlockingIOError:
                    await wait_writable(sock)
            assert sent == SIZE
            got = b""
            while len(got) < SIZE:
                try:
                    got += sock.recv(SIZE - len(got))
                except BlockingIOError:
                    await wait_readable(sock)
        return n / (time.perf_counter() - t0)

    return loop


# -- trio peers -----------------------------------------------------------


async def trio_stream_loop(sock: socket.socket, n: int) -> float:
    async with trio.SocketStream(trio.socket.from_stdlib_socket(sock)) as stream:
        t0 = time.perf_counter()
        for _ in range(n):
            await stream.send_all(MSG)
            got = await stream.receive_some(SIZE)
            while len(got) < SIZE:
                got += await stream.receive_some(SIZE - len(got))
        return n / (time.perf_counter() - t0)


# -- the practical limit ----------------------------------------------------


def blocking_thread(sock: socket.socket, n: int) -> float:
    rates: list[float] = []

    def work() -> None:
        t0 = time.perf_counter()
        for _ in range(n):
            sock.sendall(MSG)
            got = sock.recv(SIZE)
            while len(got) < SIZE:
                got += sock.recv(SIZE - len(got))
        rates.append(n / (time.perf_counter() - t0))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return rates[0]


def fresh_malloc(
    run: Callable[[socket.socket, int], float],
) -> Callable[[socket.socket, int], float]:
    """``run`` with glibc's initial large-block policy (every case else: warm)."""

    def fresh(sock: socket.socket, n: int) -> float:
        pin_malloc("fresh")
        try:
            return run(sock, n)
        finally:
            pin_malloc("warm")

    return fresh


FRESH = " (fresh malloc)"

CASES: dict[str, Callable[[socket.socket, int], float]] = {
    "adapt asyncio": on_asyncio(adapt_loop),
    "adapt uvloop": on_uvloop(adapt_loop),
    "adapt trio": on_trio(adapt_loop),
    "asyncio sock_recv/sock_sendall": on_asyncio(sock_recv_loop),
    "asyncio streams": on_asyncio(streams_loop),
    "asyncio Protocol": on_asyncio(protocol_loop),
    "asyncio streams" + FRESH: fresh_malloc(on_asyncio(streams_loop)),
    "asyncio Protocol" + FRESH: fresh_malloc(on_asyncio(protocol_loop)),
    "uvloop Protocol": on_uvloop(protocol_loop),
    "anyio.wait_readable loop (asyncio)": on_asyncio(
        readiness_loop(anyio.wait_readable, anyio.wait_writable)
    ),
    "trio wait_readable loop": on_trio(
        readiness_loop(trio.lowlevel.wait_readable, trio.lowlevel.wait_writable)
    ),
    "trio SocketStream": on_trio(trio_stream_loop),
    "blocking socket in a thread": blocking_thread,
}

TARGETS = [
    ("adapt asyncio", "asyncio sock_recv/sock_sendall", 1.05),
    ("adapt asyncio", "asyncio streams", 1.15),
    ("adapt asyncio", "asyncio streams" + FRESH, 1.15),
    ("adapt uvloop", "uvloop Protocol", 0.75),
    ("adapt trio", "trio wait_readable loop", 1.0),
    ("adapt trio", "trio SocketStream", 1.3),
    ("adapt asyncio", "anyio.wait_readable loop (asyncio)", 1.05),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--n", type=int, help="round trips per case run (default 20000)")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 7)")
    add_peer_options(parser, "same")
    args = parser.parse_args()
    n = args.n or (1000 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 7)

    load = os.getloadavg()[0]
    pin_malloc("warm")
    medians = interleave_on_peer(
        CASES, cpus=args.cpus, mode="echo", size=n, rounds=rounds, only=args.only
    )

    title = f"ping-pong, {SIZE}-byte messages, {n} round trips x {rounds} rounds"
    save_as = "pingpong_quick" if args.quick else "pingpong"
    report(title, "round trips/s", medians, TARGETS, save_as=save_as)
    note_load(save_as, load)


if __name__ == "__main__":
    main()
