"""TLS: MB/s received through the tls recipe and asyncio's SSL streams.

A blocking peer process does the other side with the ssl module:

* **client** cases: we connect to the peer's TLS server (handshake not
  timed), send a one-byte go-ahead and receive ``--mib`` MiB.
* **server** cases: we listen, the peer connects as a TLS client and, after
  our go-ahead, sends ``--mib`` MiB; we receive them.

Cases: the recipe (``connect_tls`` / ``accept_tls`` + ``BufferedStream.read``)
on asyncio, uvloop and trio; ``asyncio.open_connection(ssl=...)`` and
``asyncio.start_server(ssl=...)`` + ``StreamReader.read`` on asyncio and
uvloop.  Interleaved in one process, median of the rounds.  Two figures per
case: MiB/s, and MiB per CPU second of this process (what receiving costs,
whichever side limits the throughput).  glibc's policy for large blocks is
pinned "warm" (see ``_harness.pin_malloc``): asyncio's SSL transport reads
into large buffers, and its cases otherwise swing between two speeds from
round to round.

    python benchmarks/bench_tls.py              # full run
    python benchmarks/bench_tls.py --quick      # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes.tls import accept_tls, connect_tls

from adapt import Async

MiB = 1024 * 1024
CHUNK = 64 * 1024


def _peer(cert: str, key: str, total: int) -> None:
    """The blocking peer: commands on stdin, one per case run."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    block = b"\xa5" * CHUNK
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)

    def send_all(tls: ssl.SSLSocket) -> None:
        with tls:
            if tls.recv(1):
                left = total
                while left > 0:
                    tls.sendall(block[:left])
                    left -= CHUNK
                tls.recv(1)  # wait for the reader to finish before closing

    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "serve":
            conn, _ = listener.accept()
            send_all(server_ctx.wrap_socket(conn, server_side=True))
        elif command == "connect":
            sock = socket.create_connection(("127.0.0.1", int(arg)))
            send_all(client_ctx.wrap_socket(sock, server_hostname="localhost"))


# -- our side: returns MiB/s ---------------------------------------------------


async def recipe_client(port: int, context: ssl.SSLContext, total: int, _: Any) -> float:
    async with await connect_tls("localhost", port, context=context) as stream:
        return await _recipe_receive(stream, total)


async def recipe_server(
    listener: socket.socket, context: ssl.SSLContext, total: int, go: Any
) -> float:
    async with Async(listener.dup()) as lst:
        go()
        stream, _ = await accept_tls(lst, context)
    async with stream:
        return await _recipe_receive(stream, total)


async def _recipe_receive(stream: Any, total: int) -> float:
    t0 = time.perf_counter()
    await stream.write_all(b"g")
    left = total
    while left:
        data = await stream.read(CHUNK)
        if not data:
            raise EOFError(f"{left} bytes missing")
        left -= len(data)
    rate = total / MiB / (time.perf_counter() - t0)
    await stream.write_all(b"k")
    return rate


async def asyncio_client(port: int, context: ssl.SSLContext, total: int, _: Any) -> float:
    reader, writer = await asyncio.open_connection(
        "localhost", port, ssl=context, server_hostname="localhost"
    )
    return await _asyncio_receive(reader, writer, total)


async def asyncio_server(
    listener: socket.socket, context: ssl.SSLContext, total: int, go: Any
) -> float:
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done.set_result(await _asyncio_receive(reader, writer, total))

    server = await asyncio.start_server(handle, sock=listener.dup(), ssl=context)
    async with server:
        go()
        return await done


async def _asyncio_receive(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, total: int
) -> float:
    t0 = time.perf_counter()
    writer.write(b"g")
    await writer.drain()
    left = total
    while left:
        data = await reader.read(CHUNK)
        if not data:
            raise EOFError(f"{left} bytes missing")
        left -= len(data)
    rate = total / MiB / (time.perf_counter() - t0)
    writer.write(b"k")
    await writer.drain()
    writer.close()
    try:
        await writer.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass  # the peer closed without close_notify
    return rate


Side = Callable[[Any, ssl.SSLContext, int, Any], Awaitable[float]]
RUNNERS: dict[str, Callable[..., float]] = {
    "asyncio": lambda fn, *a: asyncio.run(fn(*a)),
    "uvloop": lambda fn, *a: uvloop.run(fn(*a)),
    "trio": lambda fn, *a: trio.run(fn, *a),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--mib", type=int, help="MiB per case run (default 128)")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    parser.add_argument("--peer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        _peer(args.peer[0], args.peer[1], int(args.peer[2]))
        return
    mib = args.mib or (16 if args.quick else 128)
    rounds = args.rounds or (1 if args.quick else 9)
    total = mib * MiB

    with tempfile.TemporaryDirectory() as folder:
        cert, key = str(Path(folder, "cert.pem")), str(Path(folder, "key.pem"))
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-keyout",
                key,
                "-out",
                cert,
            ],
            check=True,
            capture_output=True,
        )
        client_ctx = ssl.create_default_context(cafile=cert)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        peer = subprocess.Popen(
            [sys.executable, __file__, "--peer", cert, key, str(total)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert peer.stdin is not None
        assert peer.stdout is not None
        peer_port = int(peer.stdout.readline())
        listener = socket.create_server(("127.0.0.1", 0))
        our_port = listener.getsockname()[1]

        def command(text: str) -> None:
            assert peer.stdin is not None
            peer.stdin.write(text + "\n")
            peer.stdin.flush()

        def cpu_counted(name: str, run: Callable[[], float]) -> Callable[[], float]:
            """``run``, recording this process's MiB per CPU second (the
            handshake included) in ``cpu_rates``."""

            def one() -> float:
                cpu = time.process_time()
                rate = run()
                cpu_rates.setdefault(name, []).append(mib / (time.process_time() - cpu))
                return rate

            return one

        def client_case(side: Side, loop: str) -> Callable[[], float]:
            def one() -> float:
                command("serve")
                return RUNNERS[loop](side, peer_port, client_ctx, total, None)

            return one

        def server_case(side: Side, loop: str) -> Callable[[], float]:
            def one() -> float:
                return RUNNERS[loop](
                    side, listener, server_ctx, total, lambda: command(f"connect {our_port}")
                )

            return one

        load = os.getloadavg()[0]
        pin_malloc("warm")
        cases: dict[str, Callable[[], float]] = {}
        for loop in ("asyncio", "uvloop", "trio"):
            cases[f"recipe client {loop}"] = client_case(recipe_client, loop)
            cases[f"recipe server {loop}"] = server_case(recipe_server, loop)
        for loop in ("asyncio", "uvloop"):
            cases[f"asyncio streams client {loop}"] = client_case(asyncio_client, loop)
            cases[f"asyncio streams server {loop}"] = server_case(asyncio_server, loop)
        cpu_rates: dict[str, list[float]] = {}
        cases = {name: cpu_counted(name, run) for name, run in cases.items()}
        try:
            medians = interleave(cases, rounds, shuffle=True)
        finally:
            peer.stdin.close()
            peer.wait()
            listener.close()
    targets = [
        (f"recipe {side} {loop}", f"asyncio streams {side} {loop}", 1.3)
        for side in ("client", "server")
        for loop in ("asyncio", "uvloop")
    ]
    save_as = "tls_quick" if args.quick else "tls"
    report(f"TLS receive, {mib} MiB x {rounds} rounds", "MiB/s", medians, targets, save_as=save_as)
    note_load(save_as, load)
    # the same targets over this process's CPU: what receiving costs, whichever
    # side (this process or the peer) limits the throughput; the warm-up round
    # is left out, as in interleave()
    cpu = {name: statistics.median(rates[1:] or rates) for name, rates in cpu_rates.items()}
    save_as = f"tls_cpu{'_quick' if args.quick else ''}"
    report(
        f"TLS receive, {mib} MiB x {rounds} rounds, CPU",
        "MiB per CPU second",
        cpu,
        targets,
        save_as,
    )
    note_load(save_as, load)


if __name__ == "__main__":
    main()
