"""One test per reliability bug fixed in the readiness core (each failed before its fix)."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import subprocess
import sys

import anyio
import pytest

from adapt import Async, ClosedResourceError

from ._kinds import ANONYMOUS, KINDS, open_on
from ._util import fill, pipe, socketpair

# -- 1. anonymous-inode fds and the reuse check ------------------------------


@pytest.mark.parametrize("kind", ANONYMOUS)
async def test_reused_anonymous_fd_after_cancelled_wait_wakes(backend: str, kind: str) -> None:
    old = KINDS[kind]()
    try:
        x = Async(old.fd)
        with anyio.move_on_after(0.02):
            await x.readable()  # cancelled: nothing may stay registered
        number = old.fd
        old.close_fd_only()  # behind adapt's back
    finally:
        old.close()
    new = open_on(kind, number)
    try:
        y = Async(new.fd)
        new.poke()
        with anyio.fail_after(2):  # asyncio/uvloop reused the dead watch: hung
            await y.readable()
        y.into_inner()
    finally:
        new.close()
    del x


# -- 2. a dropped wrapper's release, and aclose() after a behind-back close --


async def test_dropped_wrapper_does_not_deregister_the_next_file(backend: str) -> None:
    a, b = socket.socketpair()
    number = a.fileno()
    got: list[bytes] = []

    async def send_soon() -> None:
        await anyio.sleep(0.02)
        b.send(b"1")

    async def new_socket_waits() -> None:
        assert await Async(a).recv(1) == b"1"  # the one-off form, after a wait
        # no await from here on: any deferred release of the dropped wrapper
        # runs after the new socket is registered
        a.close()
        b.close()
        c, d = socket.socketpair()
        with c, d:
            if c.fileno() != number:
                c, d = d, c
            assert c.fileno() == number
            async with anyio.create_task_group() as inner:
                inner.start_soon(send_later, d)
                with anyio.fail_after(2):  # the old release removed this registration
                    await anyio.wait_readable(c)
            got.append(c.recv(1))

    async def send_later(d: socket.socket) -> None:
        await anyio.sleep(0.05)
        d.send(b"2")

    async with anyio.create_task_group() as tg:
        tg.start_soon(send_soon)
        tg.start_soon(new_socket_waits)
    assert got == [b"2"]


async def test_aclose_after_behind_back_close_leaves_the_next_file_alone(backend: str) -> None:
    r, w = os.pipe()
    x = Async(r)  # r was blocking: adapt saved that
    os.close(r)  # behind adapt's back
    os.close(w)
    c, d = socket.socketpair()
    with c, d:
        if c.fileno() != r:
            c, d = d, c
        assert c.fileno() == r
        c.setblocking(False)
        await x.aclose()
        assert not os.get_blocking(c.fileno()), "aclose() switched an unrelated fd to blocking"
        assert c.fileno() == r  # and did not close it
        os.fstat(r)


async def test_close_of_int_fd_wrapper_does_not_close_a_reused_number(backend: str) -> None:
    r, w = os.pipe()
    x = Async(r)
    os.close(r)  # behind adapt's back
    os.close(w)
    s1, s2 = socket.socketpair()
    with s1, s2:
        reused = s1 if s1.fileno() == r else s2
        assert reused.fileno() == r
        x.close()
        os.fstat(r)  # still open: x no longer names it


# -- 3. uvloop's poll handle after an error event -----------------------------


async def test_udp_wait_after_icmp_error_still_wakes(backend: str) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.bind(("127.0.0.1", 0))
        s.connect(("127.0.0.1", port))
        x = Async(s)
        errors: list[BaseException] = []

        async def recv_error() -> None:
            try:
                await x.recv(10)
            except ConnectionRefusedError as exc:
                errors.append(exc)

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(recv_error)
                await anyio.sleep(0.02)  # the task waits now
                s.send(b"ping")  # nobody listens: an ICMP error event
        assert errors
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with peer:
            peer.bind(("127.0.0.1", port))

            async def send_later() -> None:
                await anyio.sleep(0.05)  # after recv() parked
                peer.sendto(b"data", s.getsockname())

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_later)
                with anyio.fail_after(2):  # uvloop: hung, the poll handle was gone
                    assert await x.recv(10) == b"data"
        x.into_inner()


async def test_refused_connects_then_a_working_one(backend: str) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    for _ in range(5):
        s = socket.socket()
        x = Async(s)
        with pytest.raises(OSError) as info:
            with anyio.fail_after(2):
                await x.connect(("127.0.0.1", port))
        assert info.value.errno == errno.ECONNREFUSED
        await x.aclose()
    with socket.create_server(("127.0.0.1", 0)) as server:
        s = socket.socket()
        x = Async(s)
        with anyio.fail_after(2):
            await x.connect(server.getsockname())
        conn, _ = server.accept()
        with conn:
            conn.send(b"ok")
            with anyio.fail_after(2):
                assert await x.recv(2) == b"ok"
        await x.aclose()


# -- 4. close through one wrapper wakes the waiters of every wrapper ----------


@pytest.mark.parametrize("closer_waited", [False, True], ids=["idle-closer", "waiting-closer"])
async def test_close_through_a_sibling_wakes_every_waiter(
    backend: str, closer_waited: bool
) -> None:
    a, b = socket.socketpair()
    with b:
        closer, sibling = Async(a), Async(a)
        fill(a)
        outcomes: list[str] = []

        async def wait(w: Async[socket.socket], op: str) -> None:
            try:
                if op == "read":
                    await w.recv(1)
                else:
                    await w.send(b"z" * 65536)
                outcomes.append("returned")
            except ClosedResourceError:
                outcomes.append("closed")
            except OSError:
                outcomes.append("oserror")

        with anyio.fail_after(2):  # the sibling's waiters hung
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, sibling, "read")
                tg.start_soon(wait, sibling, "write")
                if closer_waited:
                    tg.start_soon(wait, closer, "read")
                await anyio.sleep(0.05)
                await closer.aclose()
        assert outcomes == ["closed"] * len(outcomes)
        assert len(outcomes) == 3 if closer_waited else 2


# -- 5. close() from a foreign thread, and after the loop stopped -------------


async def test_close_from_a_foreign_thread_changes_nothing(backend: str) -> None:
    with socketpair() as (a, _b):
        x = Async(a)
        errors: list[BaseException] = []

        async def read() -> None:
            try:
                await x.recv(1)
            except ClosedResourceError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.02)
            with pytest.raises(RuntimeError, match="thread"):
                await anyio.to_thread.run_sync(x.close)
            assert not x.closed
            assert a.fileno() >= 0
            with anyio.fail_after(2):  # the waiter was never woken, the close ignored
                await x.aclose()
        assert len(errors) == 1
        assert a.fileno() == -1


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_close_after_run_until_complete(loop_kind: str) -> None:
    import uvloop

    loop = uvloop.new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
    try:
        with socketpair() as (a, b):
            x = Async(a)

            async def use() -> bytes:
                async def send_later() -> None:
                    await asyncio.sleep(0.02)
                    b.send(b"1")

                task = asyncio.ensure_future(send_later())
                data = await x.recv(1)  # waits: binds x to the loop
                await task
                return data

            assert loop.run_until_complete(use()) == b"1"
            x.close()  # the loop is stopped, not closed: allowed
            assert a.fileno() == -1
    finally:
        loop.close()


# -- 10. FileIO read to EOF, cancelled part-way -------------------------------


async def test_cancelled_read_to_eof_keeps_the_bytes_read(backend: str) -> None:
    r, w = os.pipe()
    f = io.FileIO(r, "rb", closefd=True)
    try:
        x = Async(f)
        os.write(w, b"abc")
        with anyio.move_on_after(0.05):
            await x.read()  # reads b"abc", then waits for EOF: cancelled
        os.write(w, b"def")
        os.close(w)
        w = -1
        with anyio.fail_after(2):
            assert await x.read() == b"abcdef"
        await x.aclose()
    finally:
        if w >= 0:
            os.close(w)
        f.close()


async def test_cancelled_readall_keeps_bytes_for_a_sized_read(backend: str) -> None:
    r, w = os.pipe()
    f = io.FileIO(r, "rb", closefd=True)
    with f:
        try:
            x = Async(f)
            os.write(w, b"abcdef")
            with anyio.move_on_after(0.05):
                await x.readall()
            with anyio.fail_after(2):
                assert await x.read(4) == b"abcd"
                assert await x.read(4) == b"ef"
            buf = bytearray(3)
            os.write(w, b"xyz")
            assert await x.readinto(buf) == 3
            assert bytes(buf) == b"xyz"
            x.into_inner()
        finally:
            os.close(w)


# -- 12. a subclass that changes an I/O method gets no base shim --------------


def test_subclass_changing_a_shimmed_method_is_not_given_the_base_shim() -> None:
    class Timed(io.FileIO):
        def read(self, timeout: float | None = None) -> list[int]:  # type: ignore[override]
            return []

    with pipe() as (r, _w):
        f = Timed(os.dup(r), "rb")
        with f:
            x = Async(f)
            with pytest.raises(TypeError, match=r"Timed\.read.*read_with"):
                x.read(500)
            assert callable(x.readinto)  # not changed: still shimmed
            x.into_inner()


async def test_inotify_simple_read_is_not_the_fileio_shim(backend: str, tmp_path: object) -> None:
    from inotify_simple import INotify, flags

    with INotify() as ino:
        ino.add_watch(str(tmp_path), flags.CREATE)
        x = Async(ino)
        with pytest.raises(TypeError, match="read_with"):
            await x.read(500)  # used to call INotify.read(timeout=500): a 0.5 s block
        with open(os.path.join(str(tmp_path), "f"), "wb"):
            pass
        with anyio.fail_after(2):
            events = await x.read_with(lambda i: i.read(timeout=0) or _blocked())
        assert [e.name for e in events] == ["f"]
        x.into_inner()


def _blocked() -> list[object]:
    raise BlockingIOError


# -- 13. buffered objects are refused with the fix named ----------------------


def test_buffered_and_text_objects_are_refused() -> None:
    with pipe() as (r, w):
        for fd, mode in ((r, "rb"), (r, "r"), (w, "wb")):
            with open(os.dup(fd), mode) as obj:
                before = os.get_blocking(obj.fileno())
                with pytest.raises(TypeError, match=r"\.raw.*bufsize=0.*adapt\.reader\(\)"):
                    Async(obj)
                assert os.get_blocking(obj.fileno()) == before
    proc = subprocess.Popen([sys.executable, "-c", "print(1)"], stdout=subprocess.PIPE)
    with proc:
        assert proc.stdout is not None
        with pytest.raises(TypeError, match="bufsize=0"):
            Async(proc.stdout)
        proc.stdout.read()


def test_no_read_with_hint_for_fileio_readline() -> None:
    with pipe() as (r, _w):
        f = io.FileIO(os.dup(r), "rb")
        with f:
            x = Async(f)
            with pytest.raises(AttributeError) as info:
                x.readline  # noqa: B018
            message = str(info.value)
            assert "read_with" not in message
            assert "adapt.reader()" in message
            x.into_inner()


# -- 14. socket shim completeness, fileno() after close, cancelled connect ----


async def test_fileno_after_close_is_minus_one(backend: str) -> None:
    a, b = socket.socketpair()
    with b:
        x = Async(a)
        assert x.fileno() == a.fileno()
        await x.aclose()
        assert x.fileno() == -1 == a.fileno()
    r, w = os.pipe()
    os.close(w)
    y = Async(r)
    y.close()
    assert y.fileno() == -1


async def test_sendto_with_flags_and_recvmsg_into(backend: str) -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        b.bind(("127.0.0.1", 0))
        x, y = Async(a), Async(b)
        assert await x.sendto(b"hello", 0, b.getsockname()) == 5
        buf = bytearray(16)
        with anyio.fail_after(2):
            n, _anc, _flags, _addr = await y.recvmsg_into([buf])
        assert bytes(buf[:n]) == b"hello"
        x.into_inner()
        y.into_inner()


def test_socket_shim_covers_every_socket_io_method() -> None:
    from adapt import AsyncSocket

    io_methods = {
        name
        for name in dir(socket.socket)
        if name.startswith(("recv", "send", "accept", "connect"))
    }
    io_methods -= {
        "connect_ex",  # returns an error code instead of raising
        "sendfile",  # blocking by design: loop.sock_sendfile / adapt.run_sync
        "sendmsg_afalg",  # AF_ALG (kernel crypto) sockets only
    }
    missing = {name for name in io_methods if not callable(getattr(AsyncSocket, name, None))}
    assert not missing, f"socket I/O methods without a shim: {sorted(missing)}"


async def test_cancelled_connect_closes_the_socket(backend: str) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler: list[socket.socket] = []
    try:
        # fill the accept queue: a further SYN is dropped, connect() pends
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(server.getsockname())
            except BlockingIOError:
                pass
            filler.append(c)
        s = socket.socket()
        x = Async(s)
        with anyio.move_on_after(0.2) as scope:
            await x.connect(server.getsockname())
        if not scope.cancelled_caught:
            pytest.fail("the connect completed: the accept queue was not full")
        assert x.closed
        assert s.fileno() == -1  # closed, like trio: no half-connected socket left
    finally:
        for c in filler:
            c.close()
        server.close()


# -- 15. input validation -----------------------------------------------------


def test_nonblocking_must_be_a_bool() -> None:
    with socketpair() as (a, _b):
        with pytest.raises(TypeError, match="nonblocking"):
            Async(a, nonblocking="False")  # type: ignore[call-overload]
        assert a.gettimeout() is None  # unchanged


def test_huge_fd_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="fd"):
        Async(2**40)


# -- 16. a reader another library registered is never dropped silently --------


@pytest.mark.backends("asyncio")
async def test_foreign_reader_is_refused_not_replaced(backend: str) -> None:
    loop = asyncio.get_running_loop()
    with socketpair() as (a, b):
        a.setblocking(False)
        fired = asyncio.Event()
        loop.add_reader(a.fileno(), fired.set)
        try:
            x = Async(a)
            with pytest.raises(RuntimeError, match="add_reader"):
                await x.recv(1)
            b.send(b"!")
            with anyio.fail_after(2):
                await fired.wait()  # the other library's callback is still there
        finally:
            loop.remove_reader(a.fileno())
        x.into_inner()


# -- the fd kinds the matrix uses ---------------------------------------------


def test_kinds_open_and_poke() -> None:
    for name, opener in KINDS.items():
        opened = opener()
        try:
            opened.poke()
            import select

            poller = select.poll()
            poller.register(opened.fd, select.POLLIN)
            assert poller.poll(1000), name
            opened.drain()
        finally:
            opened.close()
