"""The first shims against real sockets, pipes and ptys."""

from __future__ import annotations

import errno
import os
import socket

import anyio
import pytest

from adapt import Async, AsyncFD, AsyncSocket

from ._util import socketpair


async def test_tcp_accept_connect_roundtrip(backend: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    async with Async(listener) as lst:
        client = Async(socket.socket())
        assert isinstance(client, AsyncSocket)
        async with anyio.create_task_group() as tg:
            accepted: list[AsyncSocket] = []

            async def accept() -> None:
                conn, addr = await lst.accept()
                assert addr[0] == "127.0.0.1"
                accepted.append(conn)

            tg.start_soon(accept)
            await client.connect(listener.getsockname())
        (server,) = accepted
        assert isinstance(server, AsyncSocket)
        assert server.get_ref().gettimeout() == 0.0
        payload = os.urandom(1 << 20)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.sendall, payload)
            buf = bytearray()
            while len(buf) < len(payload):
                buf += await server.recv(65536)
        assert bytes(buf) == payload
        await server.aclose()
        assert await client.recv(10) == b""
        await client.aclose()


async def test_connect_refused(backend: str) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on port now
    async with Async(socket.socket()) as client:
        with pytest.raises(OSError) as info:
            await client.connect(("127.0.0.1", port))
        assert info.value.errno == errno.ECONNREFUSED


async def test_unix_connect(backend: str, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "s")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    async with Async(listener) as lst, Async(socket.socket(socket.AF_UNIX)) as client:
        await client.connect(path)
        conn, _ = await lst.accept()
        async with conn:
            await client.send(b"hi")
            assert await conn.recv(2) == b"hi"


async def test_recv_into_and_udp(backend: str) -> None:
    with socketpair() as (a, b):
        x = Async(a)
        buf = bytearray(8)
        b.send(b"abc")
        assert await x.recv_into(buf) == 3
        assert bytes(buf[:3]) == b"abc"
        b.send(b"defgh")
        assert await x.recv_into(memoryview(buf)[2:], 2) == 2
        assert bytes(buf[:4]) == b"abde"
        x.into_inner()
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u1.bind(("127.0.0.1", 0))
    u2.bind(("127.0.0.1", 0))
    async with Async(u1) as x1, Async(u2) as x2:
        async with anyio.create_task_group() as tg:
            got: list[tuple[bytes, object]] = []

            async def receive() -> None:
                got.append(await x2.recvfrom(100))

            tg.start_soon(receive)
            await anyio.sleep(0.01)
            assert await x1.sendto(b"dgram", u2.getsockname()) == 5
        assert got == [(b"dgram", u1.getsockname())]


async def test_fd_shims_on_a_pipe(backend: str) -> None:
    r, w = os.pipe()
    rx, tx = Async(r), Async(w)
    assert isinstance(rx, AsyncFD)
    async with rx, tx:
        async with anyio.create_task_group() as tg:
            got = bytearray()

            async def read_all() -> None:
                while len(got) < 300_000:
                    got.extend(await rx.read(65536))

            tg.start_soon(read_all)
            data = os.urandom(300_000)
            view = memoryview(data)
            while view:  # more than the pipe buffer: write waits for room
                view = view[await tx.write(view) :]
        assert bytes(got) == data
        await tx.write(b"tail")
        buf = bytearray(10)
        assert await rx.readinto(buf) == 4
        assert buf[:4] == b"tail"


async def test_pty(backend: str) -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    m, s = Async(master), Async(slave)
    async with m, s:
        async with anyio.create_task_group() as tg:
            got = bytearray()

            async def read() -> None:
                while len(got) < 5:
                    got.extend(await m.read(100))

            tg.start_soon(read)
            await anyio.sleep(0.01)
            await s.write(b"hello")
        assert bytes(got) == b"hello"
