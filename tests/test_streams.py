"""reader() / writer() over real files and pipes, on all three loops."""

from __future__ import annotations

import gzip
import io
import os
import random
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapt import ClosedResourceError, Reader, reader, run_sync, writer


def _payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = _payload(3 * 1024 * 1024 + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


async def test_read_chunks_byte_exact(backend: str, big_file: tuple[Path, bytes]) -> None:
    path, data = big_file
    parts = []
    # start: reader
    async with reader(open(path, "rb")) as r:
        while chunk := await r.read(65536):
            assert len(chunk) == 65536 or len(parts) * 65536 + len(chunk) == len(data)
            parts.append(chunk)
        assert await r.read(10) == b""
    # end: reader
    assert b"".join(parts) == data


@pytest.mark.parametrize(
    ("total", "size", "chunk", "buffer"),
    [
        (200_003, 1000, 4096, 8192),
        (200_003, 70001, 65536, 1 << 20),
        (20_011, 7, 13, 13),
        (2_003, 1, 1, 1),
    ],
)
async def test_read_odd_sizes(
    backend: str, tmp_path: Path, total: int, size: int, chunk: int, buffer: int
) -> None:
    data = _payload(total, seed=size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    out = bytearray()
    async with reader(open(path, "rb"), chunk_size=chunk, buffer_size=buffer) as r:
        while part := await r.read(size):
            out += part
    assert bytes(out) == data


async def test_read_all_read1_and_mixed(backend: str, big_file: tuple[Path, bytes]) -> None:
    path, data = big_file
    async with reader(open(path, "rb")) as r:
        head = await r.read(100)
        some = await r.read1(1 << 30)
        assert 0 < len(some) <= 1 << 20
        rest = await r.read()
        assert head + some + rest == data
        assert await r.read1() == b""


async def test_readline_and_async_for(backend: str, tmp_path: Path) -> None:
    lines = [f"line {i} " * (i % 7) + "\n" for i in range(5000)] + ["no newline at end"]
    path = tmp_path / "lines.txt"
    path.write_text("".join(lines))
    async with reader(open(path, "rb"), chunk_size=1000, buffer_size=4000) as r:
        got = [line async for line in r]
    assert got == [line.encode() for line in lines]
    async with reader(open(path, encoding="utf-8")) as t:
        assert await t.readline() == lines[0]
        assert await t.readline(3) == lines[1][:3]
        assert await t.read(len(lines[1]) - 3) == lines[1][3:]
        rest = [line async for line in t]
    assert rest == lines[2:]


async def test_gzip_file(backend: str, tmp_path: Path) -> None:
    data = _payload(500_000) * 3
    path = tmp_path / "f.gz"
    with gzip.open(path, "wb") as f:
        f.write(data)
    async with reader(gzip.open(path, "rb")) as r:
        assert await r.read() == data


async def test_cancelled_read_keeps_data_for_the_next_read(backend: str) -> None:
    rfd, wfd = os.pipe()
    try:
        async with reader(open(rfd, "rb", buffering=0)) as r:
            with anyio.move_on_after(0.05) as scope:
                await r.read(5)  # nothing arrives in time
            assert scope.cancelled_caught
            os.write(wfd, b"hel")
            with anyio.move_on_after(0.05) as scope:
                await r.read(5)  # partial data: still waiting when cancelled
            assert scope.cancelled_caught
            os.write(wfd, b"lo, world")
            assert await r.read(5) == b"hello"
            assert await r.read1(100) == b", world"
            os.close(wfd)
            wfd = -1
            assert await r.read() == b""
    finally:
        if wfd >= 0:
            os.close(wfd)


async def test_interactive_source_is_not_held_back(backend: str) -> None:
    rfd, wfd = os.pipe()
    async with reader(open(rfd, "rb")) as r:
        os.write(wfd, b"first line\nsecond")
        with anyio.fail_after(2):
            assert await r.readline() == b"first line\n"
        os.write(wfd, b" line\n")
        assert await r.readline() == b"second line\n"
        os.close(wfd)
        assert await r.readline() == b""


async def test_aclose_abandons_a_blocked_read_of_a_file_it_does_not_own(backend: str) -> None:
    rfd, wfd = os.pipe()
    stdin_like = open(rfd, "rb")  # noqa: SIM115
    try:
        r = reader(stdin_like, close=False)
        with anyio.move_on_after(0.05):
            await r.read(1)
        with anyio.fail_after(1):
            await r.aclose()  # the pump is blocked in read(): not waited for
        with pytest.raises(ClosedResourceError):
            await r.read(1)
        os.write(wfd, b"x")  # unblocks the abandoned read; its byte is dropped
    finally:
        os.close(wfd)
    await anyio.sleep(0.05)
    stdin_like.close()


async def test_aclose_of_an_owned_file_waits_for_the_read(backend: str) -> None:
    rfd, wfd = os.pipe()
    f = open(rfd, "rb")  # noqa: SIM115
    r = reader(f)
    with anyio.move_on_after(0.05):
        await r.read(1)

    async def feed() -> None:
        await anyio.sleep(0.1)
        os.write(wfd, b"late")

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        await r.aclose()
    assert f.closed
    os.close(wfd)


class _FailingFile(io.RawIOBase):
    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self.reads += 1
        if self.reads > 2:
            raise OSError("disk on fire")
        b[:4] = b"abcd"
        return 4


async def test_read_error_comes_after_the_data(backend: str) -> None:
    r = reader(_FailingFile(), chunk_size=4, buffer_size=64)
    assert await r.read(3) == b"abc"
    assert await r.read(100) == b"dabcd"
    with pytest.raises(OSError, match="disk on fire"):
        await r.read(1)
    await r.aclose()


async def test_reader_bad_input(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"x" * 100)
    with pytest.raises(TypeError, match=r"read\(\)"):
        reader(object())  # type: ignore[call-overload]
    f = open(path, "rb")  # noqa: SIM115
    f.close()
    with pytest.raises(ValueError, match="closed file"):
        reader(f)
    with open(path, "ab") as f, pytest.raises(ValueError, match="not open for reading"):
        reader(f)  # type: ignore[call-overload]
    with open(path, "rb") as f:
        with pytest.raises(ValueError, match="at least 1"):
            reader(f, chunk_size=0)
        with pytest.raises(ValueError, match="at least chunk_size"):
            reader(f, chunk_size=10, buffer_size=5)
        with pytest.raises(TypeError, match="close must be a bool"):
            reader(f, close=1)  # type: ignore[arg-type]
        r = reader(f, close=False)
        with pytest.raises(TypeError, match="takes an int"):
            await r.read("10")  # type: ignore[arg-type]
        assert await r.read(4) == b"xxxx"  # the bad call consumed nothing
        await r.aclose()
        assert not f.closed


async def test_one_waiting_task_at_a_time(backend: str) -> None:
    rfd, wfd = os.pipe()
    r: Reader[bytes] = reader(open(rfd, "rb"))  # noqa: SIM115
    async with anyio.create_task_group() as tg:
        tg.start_soon(r.read, 1)
        await anyio.sleep(0.02)
        with pytest.raises(RuntimeError, match="another task"):
            await r.read(1)
        os.write(wfd, b"z")
    os.close(wfd)
    await r.aclose()


async def test_write_byte_exact(backend: str, tmp_path: Path) -> None:
    data = _payload(2_000_000)
    path = tmp_path / "out.bin"
    # start: writer
    async with writer(open(path, "wb"), buffer_size=100_000) as w:
        for i in range(0, len(data), 7919):
            await w.write(data[i : i + 7919])  # returns at once: written behind
        await w.flush()  # everything so far is in the file now
        assert path.read_bytes() == data
    # end: writer
    async with writer(open(path, "ab")) as w:
        await w.write(bytearray(b"tail"))
        await w.write(memoryview(b"!"))
        await w.write(b"")
    assert path.read_bytes() == data + b"tail!"


async def test_write_text(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    w = writer(open(path, "w", encoding="utf-8"))  # noqa: SIM115
    for i in range(1000):
        await w.write(f"ligne {i} é\n")
    with pytest.raises(TypeError, match="takes str"):
        await w.write(b"bytes")  # type: ignore[arg-type]
    await w.aclose()
    assert path.read_text(encoding="utf-8") == "".join(f"ligne {i} é\n" for i in range(1000))
    with pytest.raises(ClosedResourceError):
        await w.write("more")
    await w.aclose()


class _GatedFile(io.RawIOBase):
    """A blocking sink whose writes wait for a gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.gate.wait(5)
        self.data += b
        return len(b)


async def test_cancelled_write_queues_nothing(backend: str) -> None:
    sink = _GatedFile()
    w = writer(sink, buffer_size=10, close=False)
    await w.write(b"0123456789")  # queued; the pump blocks in write()
    with anyio.move_on_after(0.05) as scope:
        await w.write(b"abcdefghij")  # waits for space
    assert scope.cancelled_caught
    sink.gate.set()
    await w.write(b"!")
    await w.aclose()
    assert bytes(sink.data) == b"0123456789!"


async def test_write_error_is_raised_later(backend: str) -> None:
    rfd, wfd = os.pipe()
    os.close(rfd)
    w = writer(open(wfd, "wb", buffering=0))  # noqa: SIM115
    await w.write(b"x" * 10)  # queued; the write behind fails (EPIPE)
    with pytest.raises(BrokenPipeError):
        await w.flush()
    with pytest.raises(BrokenPipeError):
        await w.write(b"more")
    await w.aclose()  # the error was seen already; the file is closed


async def test_writer_bad_input(backend: str, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"write\(\)"):
        writer(object())  # type: ignore[call-overload]
    path = tmp_path / "r"
    path.write_bytes(b"")
    with open(path, "rb") as f, pytest.raises(ValueError, match="not open for writing"):
        writer(f)  # type: ignore[call-overload]
    with open(path, "wb") as f:
        with pytest.raises(ValueError, match="at least 1"):
            writer(f, buffer_size=0)
        w = writer(f, close=False)
        with pytest.raises(TypeError, match="bytes-like"):
            await w.write("str")  # type: ignore[arg-type]
        await w.aclose()
        assert not f.closed


async def test_reader_and_writer_through_a_pipe(backend: str) -> None:
    rfd, wfd = os.pipe()
    data = _payload(1_000_000)
    r = reader(open(rfd, "rb"))  # noqa: SIM115
    w = writer(open(wfd, "wb"))  # noqa: SIM115

    async def produce() -> None:
        for i in range(0, len(data), 10_000):
            await w.write(data[i : i + 10_000])
        await w.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        got = await r.read()
    await r.aclose()
    assert got == data
    assert await run_sync(lambda: True)
