"""BufferedStream over real sockets, TLS sockets, pipes, int fds and ptys."""

from __future__ import annotations

import io
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from adapt import Async, BufferedStream, IncompleteReadError, LimitOverrunError

from ._util import socketpair


async def _feed(sock: socket.socket, parts: list[bytes], close: bool = True) -> None:
    async with Async(sock.dup()) as peer:
        for part in parts:
            await peer.sendall(part)
            await anyio.sleep(0.001)
        if close:
            peer.get_ref().shutdown(socket.SHUT_WR)


async def test_readline_across_chunks(backend: str) -> None:
    with socketpair() as (a, b):
        stream = BufferedStream(a.dup(), chunk_size=3)
        async with stream, anyio.create_task_group() as tg:
            tg.start_soon(_feed, b, [b"he", b"llo\nwor", b"ld\n\nlast"])
            assert await stream.readline() == b"hello\n"
            assert await stream.readline() == b"world\n"
            assert await stream.readline() == b"\n"
            assert await stream.readline() == b"last"  # the end: what is left
            assert await stream.readline() == b""
            assert stream.at_eof()


async def test_readuntil_separator_straddles_reads(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup(), chunk_size=2) as stream, anyio.create_task_group() as tg:
            tg.start_soon(_feed, b, [b"one\r", b"\ntwo\r", b"\r\n", b"tail"])
            assert await stream.readuntil(b"\r\n") == b"one\r\n"
            assert await stream.readuntil(b"\r\n") == b"two\r\r\n"
            with pytest.raises(IncompleteReadError) as info:
                await stream.readuntil(b"\r\n")
            assert info.value.partial == b"tail"
            assert info.value.expected is None
            with pytest.raises(ValueError, match="empty"):
                await stream.readuntil(b"")


async def test_readexactly_read_and_read_to_eof(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup()) as stream, anyio.create_task_group() as tg:
            tg.start_soon(_feed, b, [b"\x00\x05", b"abc", b"de", b"rest", b"of it"])
            assert await stream.readexactly(2) == b"\x00\x05"
            assert await stream.readexactly(5) == b"abcde"
            assert await stream.readexactly(0) == b""
            assert await stream.read(0) == b""
            first = await stream.read(2)
            assert first in (b"re", b"r")
            assert first + await stream.read() == b"restof it"
            assert await stream.read(10) == b""
            with pytest.raises(IncompleteReadError) as info:
                await stream.readexactly(1)
            assert (info.value.partial, info.value.expected) == (b"", 1)


async def test_readexactly_incomplete_returns_what_came(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup()) as stream:
            b.sendall(b"abc")
            b.shutdown(socket.SHUT_WR)
            with pytest.raises(IncompleteReadError) as info:
                await stream.readexactly(10)
            assert (info.value.partial, info.value.expected) == (b"abc", 10)


async def test_async_for_lines(backend: str) -> None:
    with socketpair() as (a, b):
        lines = [f"line {i}\n".encode() for i in range(1000)]
        async with BufferedStream(a.dup()) as stream, anyio.create_task_group() as tg:
            tg.start_soon(_feed, b, [b"".join(lines[i : i + 37]) for i in range(0, 1000, 37)])
            got = [line async for line in stream]
        assert got == lines


async def test_line_over_limit_loses_nothing(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup(), limit=16) as stream:
            b.sendall(b"short\n" + b"x" * 40 + b"\nafter\n")
            b.shutdown(socket.SHUT_WR)
            assert await stream.readline() == b"short\n"
            with pytest.raises(LimitOverrunError, match="limit of 16") as info:
                await stream.readline()
            assert info.value.consumed >= 16
            with pytest.raises(LimitOverrunError):
                await stream.readuntil(b"\n")  # still there, still too long
            # skip the long line explicitly: every byte is still buffered
            skipped = b""
            while not skipped.endswith(b"\n"):
                skipped += await stream.read(1)
            assert skipped == b"x" * 40 + b"\n"
            assert await stream.readline() == b"after\n"
            assert await stream.readline() == b""


async def test_separator_found_beyond_limit(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup(), limit=8) as stream:
            b.sendall(b"0123456789\n")
            with pytest.raises(LimitOverrunError):
                await stream.readline()
            assert await stream.readexactly(11) == b"0123456789\n"


async def test_write_all_large_both_ways_no_deadlock(backend: str) -> None:
    payload = os.urandom(8 << 20)
    with socketpair() as (a, b):
        left = BufferedStream(a.dup())
        right = BufferedStream(b.dup())
        async with left, right, anyio.create_task_group() as tg:

            async def send_then_shut(stream: BufferedStream) -> None:
                await stream.write_all(payload)
                stream.get_ref().shutdown(socket.SHUT_WR)

            tg.start_soon(send_then_shut, left)
            tg.start_soon(send_then_shut, right)
            got_left = await left.read()
            got_right = await right.read()
        assert got_left == payload
        assert got_right == payload


async def test_cancelled_readexactly_keeps_the_bytes(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup()) as stream:
            b.sendall(b"12345")
            with anyio.move_on_after(0.2):
                await stream.readexactly(10)
            assert stream.buffered == 5
            b.sendall(b"67890")
            assert await stream.readexactly(10) == b"1234567890"


async def test_two_readers_at_once_is_an_error(backend: str) -> None:
    with socketpair() as (a, b):
        async with BufferedStream(a.dup()) as stream, anyio.create_task_group() as tg:
            tg.start_soon(stream.readline)
            await anyio.sleep(0.05)
            with pytest.raises(RuntimeError, match="already reading"):
                await stream.readline()
            b.sendall(b"done\n")


async def test_pipe_fileio_and_int_fd(backend: str) -> None:
    r, w = os.pipe()
    reading = BufferedStream(io.FileIO(r, "r"))
    writing = BufferedStream(w)  # an int fd: the stream owns it
    async with reading, anyio.create_task_group() as tg:

        async def produce() -> None:
            async with writing:
                await writing.write_all(b"a\nb\n" * 50_000)

        tg.start_soon(produce)
        count = 0
        async for line in reading:
            assert line in (b"a\n", b"b\n")
            count += 1
    assert count == 100_000


async def test_pty_eio_is_eof(backend: str) -> None:
    primary, secondary = os.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", "print('hello from the child')"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    try:
        async with BufferedStream(primary) as stream:
            assert await stream.readline() == b"hello from the child\r\n"
            assert await stream.readline() == b""  # EIO after the child's exit
            assert stream.at_eof()
    finally:
        child.wait()


def _make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_socket_lines(backend: str, tmp_path: Path) -> None:
    cert, key = _make_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    server = Async(server_ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False))
    client = Async(
        client_ctx.wrap_socket(b, server_hostname="localhost", do_handshake_on_connect=False)
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.do_handshake)
        await client.do_handshake()
    lines = b"".join(f"{i}\n".encode() for i in range(20_000))
    async with BufferedStream(server) as s, BufferedStream(client) as c:
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.write_all, lines)
            got = [await s.readline() for _ in range(20_000)]
        assert b"".join(got) == lines


def test_bad_input_is_refused() -> None:
    with socketpair() as (a, _):
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="limit"):
                BufferedStream(a, limit=bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="chunk_size"):
                BufferedStream(a, chunk_size=bad)  # type: ignore[arg-type]
        assert a.gettimeout() is None  # nothing was changed
    r, w = os.pipe()
    with open(r, "rb") as buffered, open(w, "wb"):
        with pytest.raises(TypeError, match="buffering=0"):
            BufferedStream(buffered)
        assert os.get_blocking(r)


async def test_gathering_many_small_reads_takes_linear_time(backend: str) -> None:
    # 32 MiB in 4 KiB reads: joining the buffer on every read copied about
    # 128 GiB (minutes); appending in place copies each byte about once
    size = 32 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    r, w = os.pipe()
    async with BufferedStream(r, chunk_size=4096) as stream, Async(w) as writer:

        async def produce() -> None:
            view = memoryview(payload)
            while view:
                chunk = view[:65536]
                view = view[await writer.write_with(lambda fd, c=chunk: os.write(fd, c)) :]
            writer.close()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                head = await stream.readexactly(size // 2)
                rest = await stream.read()
    assert head + rest == payload


async def test_read_and_write_ops_with_the_rawio_would_block(backend: str) -> None:
    # io.FileIO on a non-blocking pipe returns None for "would block" (the
    # RawIOBase convention): the ops hand that over as is
    r, w = os.pipe()
    nones = {"read": 0, "write": 0}

    def read(f: io.FileIO, size: int) -> bytes | None:
        data = f.read(size)
        nones["read"] += data is None
        return data

    def write(f: io.FileIO, data: memoryview) -> int | None:
        sent = f.write(data)
        nones["write"] += sent is None
        return sent

    payload = b"".join(b"line %d\n" % i for i in range(200_000))  # far over a pipe's 64 KiB
    reading = BufferedStream(io.FileIO(r, "rb"), read=read)
    writing = BufferedStream(io.FileIO(w, "wb"), write=write)
    async with reading, writing, anyio.create_task_group() as tg:

        async def produce() -> None:
            await writing.write_all(payload)
            await writing.aclose()

        tg.start_soon(produce)
        assert await reading.readline() == b"line 0\n"
        assert await reading.read() == payload[len(b"line 0\n") :]
    assert nones["read"] > 0  # the reader waited for data...
    assert nones["write"] > 0  # ...and the writer for room


async def test_a_read_op_raising_would_block_and_eof(backend: str) -> None:
    with socketpair() as (a, b):
        calls: list[int] = []

        def read(sock: socket.socket, size: int) -> bytes:
            calls.append(size)
            return sock.recv(size)  # BlockingIOError: the built-in would-block

        async with BufferedStream(a.dup(), read=read, chunk_size=5) as stream:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_feed, b, [b"abc", b"defgh\n"])
                assert await stream.readline() == b"abcdefgh\n"
            assert await stream.read() == b""
            assert stream.at_eof()
            assert set(calls) == {5}


def test_bad_ops_are_refused() -> None:
    with socketpair() as (a, _):
        with pytest.raises(TypeError, match="read must be a callable"):
            BufferedStream(a, read=b"not callable")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="write must be a callable"):
            BufferedStream(a, write=4096)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="sticky_eof"):
            BufferedStream(a, sticky_eof=1)  # type: ignore[arg-type]
        assert a.gettimeout() is None  # nothing was changed


async def _type(master: int, data: bytes) -> None:
    await anyio.sleep(0.01)
    os.write(master, data)


async def test_a_terminal_reads_on_after_ctrl_d(backend: str) -> None:
    # the slave side of a pty in canonical mode, as a program's stdin sees a
    # terminal: Ctrl-D ends one read, and the user types on
    master, slave = os.openpty()
    try:
        async with BufferedStream(slave) as stream, anyio.create_task_group() as tg:
            tg.start_soon(_type, master, b"abc\n\x04")
            assert await stream.readline() == b"abc\n"
            assert await stream.readline() == b""  # Ctrl-D
            assert stream.at_eof()
            tg.start_soon(_type, master, b"more\nlines\n\x04")
            assert [line async for line in stream] == [b"more\n", b"lines\n"]
            assert stream.at_eof()
            tg.start_soon(_type, master, b"after\n")
            assert await stream.readline() == b"after\n"
            assert not stream.at_eof()
    finally:
        os.close(master)


async def test_sticky_eof_on_a_terminal(backend: str) -> None:
    master, slave = os.openpty()
    try:
        async with BufferedStream(slave, sticky_eof=True) as stream:
            os.write(master, b"abc\n\x04more\n")
            assert await stream.readline() == b"abc\n"
            assert await stream.readline() == b""
            assert await stream.readline() == b""  # final: "more" is not read
            assert await stream.read() == b""
        os.set_blocking(master, False)
    finally:
        os.close(master)


async def test_a_pty_master_reads_on_when_the_other_side_is_opened_again(backend: str) -> None:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.write(slave, b"first\n")
    os.close(slave)
    async with BufferedStream(master) as stream:
        assert await stream.readline() == b"first\r\n"
        assert await stream.readline() == b""  # EIO: no one has the other side open
        assert await stream.read() == b""
        again = os.open(name, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(again, b"second\n")
            assert await stream.readline() == b"second\r\n"
        finally:
            os.close(again)
        assert await stream.readline() == b""


async def test_a_socket_end_stays_final(backend: str) -> None:
    with socketpair() as (a, b):
        calls = 0

        def read(sock: socket.socket, size: int) -> bytes:
            nonlocal calls
            calls += 1
            return sock.recv(size)

        async with BufferedStream(a.dup(), read=read) as stream:
            b.shutdown(socket.SHUT_WR)
            assert await stream.readline() == b""
            assert await stream.readline() == b""
            assert await stream.read() == b""
            assert calls == 1  # asked once: the end of a socket is final


async def test_two_writers_at_once_do_not_interleave(backend: str) -> None:
    # Two readers at once are refused (RuntimeError); two write_all calls
    # at once must not mix their bytes silently either: each message
    # arrives whole, or the second writer is refused like a second reader.
    size = 4 << 20
    messages = {b"A": b"A" * size, b"B": b"B" * size}
    refused: list[RuntimeError] = []
    finished: list[bytes] = []
    with socketpair() as (a, b):
        writer, reader = BufferedStream(a.dup()), BufferedStream(b.dup())
        async with writer, reader, anyio.create_task_group() as tg:

            async def write(message: bytes) -> None:
                try:
                    await writer.write_all(message)
                except RuntimeError as exc:
                    refused.append(exc)
                finished.append(message[:1])
                if len(finished) == 2:
                    writer.get_ref().shutdown(socket.SHUT_WR)

            tg.start_soon(write, messages[b"A"])
            await anyio.sleep(0.1)  # the socket is full: A waits for room
            head = await reader.readexactly(1 << 20)  # room for more
            tg.start_soon(write, messages[b"B"])  # starts while A is still waiting
            with anyio.fail_after(10):
                got = head + await reader.read()
    if refused:
        assert got in messages.values()
    else:
        assert got in (messages[b"A"] + messages[b"B"], messages[b"B"] + messages[b"A"]), (
            f"{got.count(b'AB') + got.count(b'BA')} switches between the two messages"
        )


async def test_a_read_from_the_buffer_during_readuntil_is_refused_or_harmless(
    backend: str,
) -> None:
    # A second reader is refused only when it reaches the socket; a read(n)
    # served from the buffer while readuntil() waits moves the cursor under
    # it, and readuntil() then searches past a separator that straddles
    # the old and the new data.
    with socketpair() as (a, b):
        async with BufferedStream(a.dup()) as stream, anyio.create_task_group() as tg:
            records: list[bytes] = []

            async def record() -> None:
                records.append(await stream.readuntil(b"\r\n"))

            b.sendall(b"xxxx\r")
            await anyio.sleep(0.05)
            tg.start_soon(record)
            await anyio.sleep(0.05)  # readuntil has "xxxx\r" and waits
            try:
                taken = await stream.read(3)
            except RuntimeError:
                taken = b""  # refused, like a second reader
            b.sendall(b"\nyyyy\r\n")
            with anyio.fail_after(2):
                while not records:
                    await anyio.sleep(0.01)
    assert taken + records[0] == b"xxxx\r\n"
