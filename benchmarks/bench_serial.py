"""Serial: the ``serial`` recipe against pyserial-asyncio over one socat pty pair.

Both ends live in this process: one port writes the volume in 64 KiB
writes, the other reads it in reads of up to 64 KiB, concurrently; ``socat`` (a separate process)
copies between the two ptys, the same pair for every case.  Each case opens
both ports fresh on a fresh loop.  Two figures per case, both medians of
interleaved rounds, higher is better:

* **MiB/s**: wall-clock throughput of the transfer;
* **MiB per CPU second**: the volume over this process's CPU time (user +
  system) during the transfer -- the inverse of what the adapter costs.

CPU placement (``--cpus``, as ``_harness.Peer``): ``same`` (default) puts
this process and socat on one CPU under ``SCHED_BATCH``, so a transfer
costs the CPU time of both sides and differences between cases are
differences in what the adapters cost; ``free`` leaves placement to the
scheduler (on a shared 2-CPU machine the wall-clock figures then swing by
3x from round to round).

Cases: the recipe (``AsyncSerial.write`` / ``read``) on asyncio, uvloop and
trio; pyserial-asyncio (``open_serial_connection``: ``StreamWriter.write`` +
``drain`` per 64 KiB, ``StreamReader.read``) on asyncio; and a **callback
adapter**, the leanest one asyncio allows (reader and writer callbacks
registered for the whole transfer, ``os.read`` / ``os.write`` in them until
``EAGAIN``).  It is no recipe -- it gives up what adapt guarantees (a
cancelled wait consumes nothing; nothing stays registered between waits)
-- but its ratio to pyserial-asyncio is the most any asyncio adapter
reaches here.  Chunked writes
keep the comparison about waiting: handed one large buffer, pyserial-asyncio
copies the unsent rest on every ``Serial.write`` (quadratic; about 5 MiB/s
for 16 MiB written at once here; ``--write-size 0`` measures that).

    python benchmarks/bench_serial.py            # full run (~1 minute)
    python benchmarks/bench_serial.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable

import serial_asyncio
import trio
import uvloop
from _harness import interleave, note_load, pin_malloc, report, save
from adapt.recipes.serial import open_serial

MiB = 1024 * 1024
CHUNK = 64 * 1024
#: bytes per write (``--write-size``; 0: the whole volume in one write)
WRITE = CHUNK
BAUD = 4_000_000  # ptys ignore it; set for the record
#: the case name of the leanest asyncio adapter (see the module docstring)
CALLBACK_ADAPTER = "callback adapter (no recipe: the ceiling)"


async def adapt_transfer(
    a: str, b: str, data: bytes, gather: Callable[..., Awaitable[None]]
) -> None:
    async with open_serial(a, BAUD) as tx, open_serial(b, BAUD) as rx:

        async def receive() -> None:
            left = len(data)
            while left:
                left -= len(await rx.read(CHUNK))

        async def send() -> None:
            view = memoryview(data)
            for start in range(0, len(view), WRITE or len(view)):
                await tx.write(view[start : start + (WRITE or len(view))])

        await gather(send(), receive())


async def callback_transfer(a: str, b: str, data: bytes) -> None:
    """The callback adapter (see the module docstring) over the same ports."""
    loop = asyncio.get_running_loop()
    # opened by the recipe, for the same port settings (non-blocking, VMIN=1)
    tx, rx = open_serial(a, BAUD), open_serial(b, BAUD)
    try:
        tx_fd, rx_fd = tx.serial.fileno(), rx.serial.fileno()
        done = loop.create_future()
        left, sent, view = len(data), 0, memoryview(data)

        def on_readable() -> None:
            nonlocal left
            while True:
                try:
                    left -= len(os.read(rx_fd, CHUNK))
                except BlockingIOError:
                    return
                if not left:
                    loop.remove_reader(rx_fd)
                    done.set_result(None)
                    return

        def on_writable() -> None:
            nonlocal sent
            while sent < len(view):
                try:
                    sent += os.write(tx_fd, view[sent : sent + (WRITE or len(view))])
                except BlockingIOError:
                    return
            loop.remove_writer(tx_fd)

        loop.add_reader(rx_fd, on_readable)
        loop.add_writer(tx_fd, on_writable)
        await done
    finally:
        tx.close()
        rx.close()


async def asyncio_gather(*coros: Awaitable[None]) -> None:
    await asyncio.gather(*coros)


async def trio_gather(*coros: Awaitable[None]) -> None:
    async with trio.open_nursery() as nursery:
        for coro in coros:

            async def run(c: Awaitable[None] = coro) -> None:
                await c

            nursery.start_soon(run)


async def pyserial_asyncio_transfer(a: str, b: str, data: bytes) -> None:
    _, writer = await serial_asyncio.open_serial_connection(url=a, baudrate=BAUD)
    reader, rwriter = await serial_asyncio.open_serial_connection(url=b, baudrate=BAUD)

    async def send() -> None:
        view = memoryview(data)
        for start in range(0, len(view), WRITE or len(view)):
            writer.write(view[start : start + (WRITE or len(view))])
            await writer.drain()

    async def receive() -> None:
        left = len(data)
        while left:
            left -= len(await reader.read(CHUNK))

    await asyncio.gather(send(), receive())
    writer.close()
    rwriter.close()
    await asyncio.sleep(0)  # let the transports close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--mib", type=int, default=16, help="MiB per transfer (default 16)")
    parser.add_argument(
        "--write-size", type=int, default=CHUNK, help="bytes per write (0: all at once)"
    )
    parser.add_argument(
        "--cpus", choices=["same", "free"], default="same", help="see the module docstring"
    )
    args = parser.parse_args()
    global WRITE
    WRITE = args.write_size
    size = (2 if args.quick else args.mib) * MiB
    rounds = 2 if args.quick else 9
    data = os.urandom(size)
    load_before = os.getloadavg()[0]
    pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
    cpu_rates: dict[str, list[float]] = {}

    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "ttyA"), os.path.join(tmp, "ttyB")
        socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
        affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
        try:
            while not (os.path.exists(a) and os.path.exists(b)):
                time.sleep(0.01)
            if args.cpus == "same":
                for pid in (0, socat.pid):
                    os.sched_setaffinity(pid, {min(affinity)})
                    os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))

            def case(name: str, run: Callable[[], None]) -> Callable[[], float]:
                def one() -> float:
                    cpu, wall = time.process_time(), time.perf_counter()
                    run()
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    cpu_rates.setdefault(name, []).append(size / MiB / cpu)
                    return size / MiB / wall

                return one

            cases = {
                "adapt recipe (asyncio)": lambda: asyncio.run(
                    adapt_transfer(a, b, data, asyncio_gather)
                ),
                "adapt recipe (uvloop)": lambda: uvloop.run(
                    adapt_transfer(a, b, data, asyncio_gather)
                ),
                "adapt recipe (trio)": lambda: trio.run(adapt_transfer, a, b, data, trio_gather),
                "pyserial-asyncio (asyncio)": lambda: asyncio.run(
                    pyserial_asyncio_transfer(a, b, data)
                ),
                CALLBACK_ADAPTER: lambda: asyncio.run(callback_transfer(a, b, data)),
            }
            medians = interleave(
                {name: case(name, run) for name, run in cases.items()}, rounds, shuffle=True
            )
        finally:
            socat.terminate()
            socat.wait()
            os.sched_setscheduler(0, policy, os.sched_param(0))
            os.sched_setaffinity(0, affinity)

    suffix = "_quick" if args.quick else ""
    report(
        "serial over a socat pty pair",
        "MiB/s",
        medians,
        [
            ("adapt recipe (asyncio)", "pyserial-asyncio (asyncio)", 1.7),
            ("adapt recipe (uvloop)", "pyserial-asyncio (asyncio)", 1.7),
        ],
        save_as=f"serial{suffix}",
    )
    ceiling = medians[CALLBACK_ADAPTER] / medians["pyserial-asyncio (asyncio)"]
    print(f"  ceiling: {CALLBACK_ADAPTER} / pyserial-asyncio (asyncio) = {ceiling:.2f}x")
    # the first (warm-up) round is not counted, as in interleave()
    cpu = {name: statistics.median(v[1:]) for name, v in cpu_rates.items()}
    print("\n== MiB per CPU second of this process (median, higher is less CPU)")
    for name, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44} {value:14.1f}")
    ratio = cpu["adapt recipe (asyncio)"] / cpu["pyserial-asyncio (asyncio)"]
    print(f"  adapt recipe (asyncio) / pyserial-asyncio (asyncio) = {ratio:.2f}x (target > 1.0x)")
    save(f"serial_cpu{suffix}", {"title": "serial CPU", "unit": "MiB per CPU s", "medians": cpu})
    note_load(f"serial{suffix}", load_before)


if __name__ == "__main__":
    main()
