"""The serial recipe: pyserial over a real pty pair joined by socat."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import serial
from adapt.recipes import serial as recipe
from adapt.recipes.serial import AsyncSerial, open_serial

from adapt import Async, BufferedStream, LimitOverrunError

from .._util import held_clock
from ._example import example_main


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two serial-like ttys joined by ``socat``: what one end writes, the other reads."""
    a, b = str(tmp_path / "ttyA"), str(tmp_path / "ttyB")
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (os.path.exists(a) and os.path.exists(b)):
            assert socat.poll() is None, "socat exited"
            assert time.monotonic() < deadline, "socat made no ptys"
            time.sleep(0.01)
        yield a, b
    finally:
        socat.terminate()
        socat.wait(10)


async def test_example(backend: str, ports: tuple[str, str]) -> None:
    await example_main(recipe, PORT_A=ports[0], PORT_B=ports[1])()


async def test_large_transfers_both_ways_lose_nothing(backend: str, ports: tuple[str, str]) -> None:
    size = 3_000_000
    data_ab, data_ba = os.urandom(size), os.urandom(size)
    gaps: list[float] = []
    async with open_serial(ports[0]) as a, open_serial(ports[1]) as b:
        got: dict[str, bytes] = {}

        async def receive(name: str, port: AsyncSerial) -> None:
            got[name] = await port.readexactly(size)

        async def ticker() -> None:  # (a wait for a CPU is not a stall: see held_clock)
            last = held_clock()
            while True:
                await anyio.sleep(0.001)
                now = held_clock()
                gaps.append(now - last)
                last = now

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            async with anyio.create_task_group() as transfer:
                transfer.start_soon(a.write, data_ab)
                transfer.start_soon(b.write, data_ba)
                transfer.start_soon(receive, "ab", b)
                transfer.start_soon(receive, "ba", a)
            tg.cancel_scope.cancel()
    assert got["ab"] == data_ab
    assert got["ba"] == data_ba
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f} s"


async def test_write_to_a_full_buffer_parks_without_blocking_the_loop(
    backend: str, ports: tuple[str, str]
) -> None:
    data = os.urandom(1_000_000)  # far more than the ptys and socat hold
    async with open_serial(ports[0]) as a, open_serial(ports[1]) as b:
        done = anyio.Event()

        async def writer() -> None:
            await a.write(data)
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            ticks = 0
            for _ in range(20):  # nobody reads: the writer must wait, the loop runs
                await anyio.sleep(0.005)
                ticks += 1
            assert not done.is_set()
            assert ticks == 20
            assert await b.readexactly(len(data)) == data
        assert done.is_set()


async def test_lines_limit_and_iteration(backend: str, ports: tuple[str, str]) -> None:
    async with open_serial(ports[0]) as a, AsyncSerial(serial.Serial(ports[1]), limit=16) as b:
        assert b.serial.timeout == 0
        await a.write(b"one\ntwo\n" + b"x" * 40 + b"\nthree\n")
        assert [await b.readline(), await b.readline()] == [b"one\n", b"two\n"]
        await anyio.sleep(0.05)
        with pytest.raises(LimitOverrunError):
            await b.readline()  # over the limit: nothing consumed
        assert await b.readexactly(41) == b"x" * 40 + b"\n"
        lines = []
        async for line in b:
            lines.append(line)
            if line == b"three\n":
                break
        assert lines == [b"three\n"]
        await b.flush()


def test_a_closed_port_is_refused(ports: tuple[str, str]) -> None:
    ser = serial.Serial()
    ser.port = ports[0]
    with pytest.raises(ValueError, match="not open"):
        AsyncSerial(ser)


async def test_buffered_stream_over_serial_read(backend: str, ports: tuple[str, str]) -> None:
    # pyserial's own read with timeout=0 says "nothing yet" with b"": the read
    # op maps that to None, and BufferedStream waits until the port is readable
    reads = 0

    def read(ser: serial.Serial, size: int) -> bytes | None:
        nonlocal reads
        reads += 1
        return ser.read(size) or None

    payload = os.urandom(200_000)
    # a Serial is no kind adapt knows: the mode is the caller's choice
    # (pyserial opens the port O_NONBLOCK already)
    rx = BufferedStream(Async(serial.Serial(ports[1], timeout=0), nonblocking=True), read=read)
    tx = BufferedStream(Async(serial.Serial(ports[0], timeout=0), nonblocking=True))
    async with rx, tx, anyio.create_task_group() as tg:
        tg.start_soon(tx.write_all, b"AT\r\n" + payload)
        assert await rx.readuntil(b"\r\n") == b"AT\r\n"
        assert await rx.readexactly(len(payload)) == payload
        assert rx.buffered == 0
    assert not rx.get_ref().is_open  # closing the stream closed the port
    assert reads > 1
