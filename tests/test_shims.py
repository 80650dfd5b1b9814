"""The built-in shims against the real objects, on asyncio, uvloop and trio."""

from __future__ import annotations

import array
import io
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapt import (
    Async,
    AsyncConnection,
    AsyncFD,
    AsyncFileIO,
    AsyncSocket,
    ClosedResourceError,
)

from ._util import pipe, socketpair


async def _later(delay: float, fn: object, *args: object) -> None:
    await anyio.sleep(delay)
    assert callable(fn)
    fn(*args)


# -- socket.socket -----------------------------------------------------------


async def test_socket_recv_waits_then_returns(backend: str) -> None:
    with socketpair() as (a, b):
        async with Async(a) as x, anyio.create_task_group() as tg:
            b.setblocking(False)
            tg.start_soon(_later, 0.05, b.send, b"hello")
            assert await x.recv(100) == b"hello"


async def test_socket_send_recv_into_and_flags(backend: str) -> None:
    with socketpair() as (a, b):
        async with Async(a) as x, Async(b) as y:
            assert await x.send(b"abcdef") == 6
            assert await y.recv(3, socket.MSG_PEEK) == b"abc"
            buf = bytearray(10)
            assert await y.recv_into(buf, 4) == 4
            assert bytes(buf[:4]) == b"abcd"
            assert await y.recv_into(buffer=buf, nbytes=2) == 2  # keywords, as in sync
            assert bytes(buf[:2]) == b"ef"


async def test_socket_datagrams(backend: str) -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    async with Async(a) as x, Async(b) as y:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_later, 0.05, a.sendto, b"ping", b.getsockname())
            data, sender = await y.recvfrom(100)
        assert (data, sender) == (b"ping", a.getsockname())
        assert await y.sendto(b"pong", sender) == 4
        buf = bytearray(8)
        n, sender = await x.recvfrom_into(buf)
        assert (bytes(buf[:n]), sender) == (b"pong", b.getsockname())


async def test_socket_sendmsg_recvmsg_pass_an_fd(backend: str) -> None:
    with socketpair() as (a, b), pipe() as (r, w):
        async with Async(a) as x, Async(b) as y:
            fds = array.array("i", [w])
            level, kind = socket.SOL_SOCKET, socket.SCM_RIGHTS
            assert await x.sendmsg([b"fd"], [(level, kind, fds)]) == 2
            data, ancdata, _, _ = await y.recvmsg(10, socket.CMSG_SPACE(fds.itemsize))
            assert data == b"fd"
            ((got_level, got_kind, payload),) = ancdata
            assert (got_level, got_kind) == (level, kind)
            passed = array.array("i", payload[: fds.itemsize])[0]
            try:
                os.write(passed, b"via the passed fd")
                assert os.read(r, 100) == b"via the passed fd"
            finally:
                os.close(passed)


async def test_socket_sendall_a_lot_with_a_slow_reader(backend: str) -> None:
    data = os.urandom(3 * 1024 * 1024)
    got = bytearray()
    with socketpair() as (a, b):
        async with Async(a) as x, Async(b) as y:

            async def reader() -> None:
                while len(got) < len(data):
                    got.extend(await y.recv(65536))
                    await anyio.sleep(0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await x.sendall(data)
    assert bytes(got) == data


async def test_socket_accept_and_connect(backend: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.socket()
    async with Async(listener) as srv, Async(client) as cli:
        async with anyio.create_task_group() as tg:
            accepted: list[AsyncSocket] = []

            async def accept() -> None:
                conn, _ = await srv.accept()
                accepted.append(conn)

            tg.start_soon(accept)
            await cli.connect(listener.getsockname())
        async with accepted[0] as conn:
            assert isinstance(conn, AsyncSocket)
            assert conn.get_ref().gettimeout() == 0.0
            await cli.sendall(b"over tcp")
            assert await conn.recv(100) == b"over tcp"


async def test_socket_connect_refused(backend: str) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()  # nothing listens there now
    async with Async(socket.socket()) as cli:
        with pytest.raises(ConnectionRefusedError):
            await cli.connect(address)


async def test_socket_shim_on_a_closed_wrapper(backend: str) -> None:
    with socketpair() as (a, _):
        x = Async(a)
        x.into_inner()
        with pytest.raises(ClosedResourceError):
            await x.recv(1)
        with pytest.raises(ClosedResourceError):
            await x.connect(("127.0.0.1", 1))


# -- io.FileIO: pipes, ptys, subprocesses -----------------------------------


@pytest.fixture
def fileio_pipe() -> Iterator[tuple[io.FileIO, io.FileIO]]:
    r, w = os.pipe()
    with io.FileIO(r, "r") as reader, io.FileIO(w, "w") as writer:
        yield reader, writer


async def test_fileio_read_waits_for_data(
    backend: str, fileio_pipe: tuple[io.FileIO, io.FileIO]
) -> None:
    reader, writer = fileio_pipe
    async with Async(reader) as r, anyio.create_task_group() as tg:
        assert isinstance(r, AsyncFileIO)
        assert reader.read(10) is None  # what the shim maps to "would block"
        tg.start_soon(_later, 0.05, writer.write, b"data")
        assert await r.read(10) == b"data"


async def test_fileio_readinto_write_and_read_to_eof(
    backend: str, fileio_pipe: tuple[io.FileIO, io.FileIO]
) -> None:
    reader, writer = fileio_pipe
    async with Async(reader) as r, Async(writer) as w:
        assert await w.write(b"abc") == 3
        buf = bytearray(2)
        assert await r.readinto(buf) == 2
        assert buf == b"ab"
        async with anyio.create_task_group() as tg:

            async def finish() -> None:
                await anyio.sleep(0.05)
                await w.write(b"def")
                await anyio.sleep(0.05)
                writer.close()  # EOF

            tg.start_soon(finish)
            # like the sync read(): no size reads until end of file
            assert await r.read() == b"cdef"
        assert await r.readall() == b""


async def test_fileio_write_waits_when_the_pipe_is_full(
    backend: str, fileio_pipe: tuple[io.FileIO, io.FileIO]
) -> None:
    reader, writer = fileio_pipe
    async with Async(reader) as r, Async(writer) as w:
        filled = 0
        while (n := writer.write(b"x" * 65536)) is not None:
            filled += n
        got = 0

        async def drain() -> None:
            nonlocal got
            await anyio.sleep(0.05)
            while got < filled:
                got += len(await r.read(65536))

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            assert await w.write(b"y") == 1  # waited until writable
        assert got == filled
        assert await r.read(10) == b"y"


async def test_fileio_pty(backend: str) -> None:
    master, slave = os.openpty()
    with io.FileIO(master, "r+") as m, io.FileIO(slave, "r+") as s:
        import tty

        tty.setraw(slave)
        async with Async(m) as am, Async(s) as sm:
            await sm.write(b"from the device")
            assert await am.read(100) == b"from the device"
            await am.write(b"to the device")
            assert await sm.read(100) == b"to the device"


async def test_fileio_subprocess_stdout(backend: str) -> None:
    code = "import sys,time; sys.stdout.buffer.write(b'one'); sys.stdout.flush(); time.sleep(0.1)"
    with subprocess.Popen(
        [sys.executable, "-c", code + "; print('two')"], stdout=subprocess.PIPE, bufsize=0
    ) as proc:
        assert isinstance(proc.stdout, io.FileIO)
        async with Async(proc.stdout) as out:
            assert await out.read(3) == b"one"
            assert await out.read() == b"two\n"


# -- raw fds -----------------------------------------------------------------


async def test_fd_read_readinto_write(backend: str) -> None:
    with pipe() as (r, w):
        ar, aw = Async(r), Async(w)
        assert isinstance(ar, AsyncFD)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_later, 0.05, os.write, w, b"late")
                assert await ar.read(10) == b"late"
            assert await aw.write(b"12345") == 5
            buf = bytearray(3)
            assert await ar.readinto(buf) == 3
            assert buf == b"123"
        finally:
            ar.into_inner()
            aw.into_inner()


async def test_fd_pty(backend: str) -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    try:
        m, s = Async(master), Async(slave)
        await m.write(b"at\r")
        assert await s.read(10) == b"at\r"
        m.into_inner()
        s.into_inner()
    finally:
        os.close(master)
        os.close(slave)


# -- multiprocessing.connection.Connection -----------------------------------


@pytest.fixture
def mp_pipe() -> Iterator[
    tuple[multiprocessing.connection.Connection, multiprocessing.connection.Connection]
]:
    a, b = multiprocessing.Pipe()
    with a, b:
        yield a, b


async def test_connection_objects_and_bytes(
    backend: str,
    mp_pipe: tuple[multiprocessing.connection.Connection, multiprocessing.connection.Connection],
) -> None:
    a, b = mp_pipe
    async with Async(a) as x, Async(b) as y:
        assert isinstance(x, AsyncConnection)
        # no non-blocking mode: the fd stays blocking, poll(0) decides
        assert os.get_blocking(a.fileno())
        async with anyio.create_task_group() as tg:
            tg.start_soon(_later, 0.05, b.send, {"answer": 42})
            assert await x.recv() == {"answer": 42}
        await y.send_bytes(b"0123456789", 2, 5)
        assert await x.recv_bytes() == b"23456"
        await x.send_bytes(b"into")
        buf = bytearray(10)
        assert await y.recv_bytes_into(buf, 3) == 4
        assert buf[3:7] == b"into"
        await y.send([1, 2, 3])
        assert await x.recv() == [1, 2, 3]


async def test_connection_from_a_thread_with_large_messages(
    backend: str,
    mp_pipe: tuple[multiprocessing.connection.Connection, multiprocessing.connection.Connection],
) -> None:
    a, b = mp_pipe
    blob = os.urandom(1 << 20)

    def peer() -> None:
        for _ in range(3):
            b.send_bytes(b.recv_bytes())

    # Started before the loop blocks in send_bytes (a message larger than the
    # pipe buffer holds the loop until the peer drains it: the caveat).
    thread = threading.Thread(target=peer)
    thread.start()
    try:
        async with Async(a) as x:
            for _ in range(3):
                await x.send_bytes(blob)
                assert await x.recv_bytes() == blob
    finally:
        thread.join()


# -- the wrapper is not the object ------------------------------------------


async def test_wrapper_is_not_the_sync_object(backend: str) -> None:
    with socketpair() as (a, _):
        async with Async(a) as x:
            assert not isinstance(x, socket.socket)
            assert x.get_ref() is a
            assert not hasattr(a, "read_with")  # the socket itself is untouched
            assert type(a).recv is socket.socket.recv


def test_misspelled_shim_names_the_closest() -> None:
    with socketpair() as (a, _):
        x = Async(a)
        try:
            with pytest.raises(AttributeError, match=r"'recieve'; did you mean 'recv'\?"):
                x.recieve  # noqa: B018
            with pytest.raises(AttributeError, match=r"getpeername has no awaitable shim"):
                x.getpeername  # noqa: B018
            with pytest.raises(AttributeError, match="'_private'"):
                x._private  # noqa: B018
        finally:
            x.into_inner()


def test_importing_adapt_does_not_import_multiprocessing() -> None:
    code = "import sys, adapt; print('multiprocessing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_shim_registered_by_name_before_its_module_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "late_module_for_adapt.py").write_text(
        "import os\n"
        "class Pipe:\n"
        "    def __init__(self):\n"
        "        self.r, self.w = os.pipe()\n"
        "    def fileno(self):\n"
        "        return self.r\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "late_module_for_adapt" not in sys.modules

    class AsyncLate(Async[Any], wraps="late_module_for_adapt.Pipe"):
        pass

    import late_module_for_adapt

    pipe_obj = late_module_for_adapt.Pipe()
    try:
        a = Async(pipe_obj)
        assert type(a) is AsyncLate
        a.into_inner()
    finally:
        os.close(pipe_obj.r)
        os.close(pipe_obj.w)
        del sys.modules["late_module_for_adapt"]


def test_dispatch_picks_the_nearest_shim_in_the_mro() -> None:
    class MySocket(socket.socket):
        pass

    a, b = socket.socketpair()
    mine = MySocket(fileno=a.detach())
    with mine, b:
        x = Async(mine)
        assert type(x) is AsyncSocket
        x.into_inner()


def test_help_shows_the_sync_documentation() -> None:
    doc = AsyncSocket.recv.__doc__ or ""
    assert doc.startswith("Awaitable ``sock.recv(bufsize, flags)``.")
    assert "The sync method (socket.socket.recv):" in doc
    assert "The sync method (_io.FileIO.readinto):" in (AsyncFileIO.readinto.__doc__ or "")


async def test_connection_fd_is_left_blocking(
    backend: str,
    mp_pipe: tuple[multiprocessing.connection.Connection, multiprocessing.connection.Connection],
) -> None:
    a, b = mp_pipe
    x = Async(a)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_later, 0.05, b.send, "wake")
        assert await x.recv() == "wake"  # registered with the loop (uvloop: O_NONBLOCK set)
    assert x.into_inner() is a
    assert os.get_blocking(a.fileno())
