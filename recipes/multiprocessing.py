"""multiprocessing connections: async send/recv for Pipe(), Listener and Client.

Requires: standard library (``multiprocessing.connection``).

Platforms: Linux (any Unix: ``Pipe()`` and socket connections, not Windows pipes).

Adapts: a ``multiprocessing.connection.Connection`` (:class:`Conn`), a
:class:`Listener` that ``Client(address, authkey=...)`` of other processes
connect to, and :func:`connect` to a ``Listener`` of either kind.  A
``Connection`` has no non-blocking receive (its would-block test is
``poll(0)``, and ``recv()`` then blocks until the whole message is in: from a
task on the same loop, a deadlock), so the recipe speaks its framing (a
4-byte big-endian length, or ``-1`` and 8 bytes past 2 GiB, then the pickle)
on the non-blocking fd: ``os.readv`` / ``os.writev`` raising
``BlockingIOError`` wait in ``read_with`` / ``write_with``.

Mode: the connection's int fd and the listener's and client's sockets are
kinds adapt knows: they are made non-blocking (restored by ``into_inner()``).

Caveats: do not use the ``Connection`` itself while a :class:`Conn` holds
it (:meth:`Conn.into_inner` gives it back blocking).  A cancelled ``recv``
keeps what arrived; a cancelled ``send`` finishes its frame in the next
``send`` (a frame is never cut).  The ``authkey`` handshake runs the
library's own functions in a worker thread; a cancellation shuts the socket
down, which ends that thread.  Pickling runs on the loop.

Example::

    import asyncio
    from multiprocessing.connection import Pipe

    import anyio
    from adapt.recipes.multiprocessing import Conn, Listener, connect

    async def main():
        a, b = Pipe()
        async with Conn(a) as left, Conn(b) as right:
            big = bytes(10_000_000)                  # both ends on one loop
            async with anyio.create_task_group() as tg:
                tg.start_soon(left.send, {"blob": big})
                assert (await right.recv())["blob"] == big

        async def serve(listener):
            async with await listener.accept() as conn:
                await conn.send(await conn.recv() * 2)

        with Listener(authkey=b"secret") as listener:  # Client(address, authkey) too
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve, listener)
                async with await connect(listener.address, authkey=b"secret") as conn:
                    await conn.send(21)
                    assert await conn.recv() == 42

    asyncio.run(main())
"""

from __future__ import annotations

import multiprocessing.connection as mpc
import os
import pickle
import socket
import struct
from multiprocessing.reduction import ForkingPickler
from typing import Any, Self

from adapt import Async, run_sync

#: the module's helpers that its type stubs leave out (they are untyped)
_helpers: Any = mpc

LIBRARY = None
SUMMARY = "multiprocessing connections: async send/recv for Pipe(), Listener and Client."


class Conn:
    """A ``Connection`` with awaitable ``send``/``recv``/``send_bytes``/``recv_bytes``."""

    def __init__(self, conn: mpc.Connection[Any, Any]) -> None:
        self._conn = conn
        self._async = Async(conn.fileno())  # O_NONBLOCK until into_inner()
        self._head = b""  # receive state, kept across a cancelled recv
        self._body: bytearray | None = None
        self._got = 0
        self._out: list[memoryview] = []  # the rest of a frame being sent

    async def send(self, obj: Any) -> None:
        await self.send_bytes(ForkingPickler.dumps(obj))

    async def recv(self) -> Any:
        return pickle.loads(await self._recv_frame(None))

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        await self._flush()  # the rest of a send that was cancelled
        body = memoryview(data).cast("B")
        size = len(body)
        head = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
        self._out = [memoryview(head), body] if size else [memoryview(head)]
        try:
            await self._flush()
        except BaseException:
            if sum(map(len, self._out)) == len(head) + size:
                self._out = []  # cancelled before the first byte: not sent at all
            raise

    async def recv_bytes(self, maxlength: int | None = None) -> bytes:
        return bytes(await self._recv_frame(maxlength))

    async def _flush(self) -> None:
        out = self._out
        while out:
            sent = await self._async.write_with(lambda fd: os.writev(fd, out))
            while sent:
                if sent >= len(out[0]):
                    sent -= len(out.pop(0))
                else:
                    out[0], sent = out[0][sent:], 0

    async def _read_into(self, view: memoryview) -> int:
        got = await self._async.read_with(lambda fd: os.readv(fd, [view]))
        if not got:
            raise EOFError("the other end closed the connection")
        return got

    async def _recv_frame(self, maxlength: int | None) -> bytearray:
        while self._body is None:
            need = 12 if self._head[:4] == b"\xff\xff\xff\xff" else 4
            if len(self._head) == need:
                size = struct.unpack("!Q" if need == 12 else "!i", self._head[need - 8 :])[0]
                if maxlength is not None and size > maxlength:
                    self.close()  # as the library: checked before the body is allocated
                    raise OSError("bad message length")
                self._body, self._got = bytearray(size), 0
                break
            part = bytearray(need - len(self._head))
            self._head += part[: await self._read_into(memoryview(part))]
        body = self._body
        if maxlength is not None and len(body) > maxlength:
            self.close()
            raise OSError("bad message length")
        view = memoryview(body)
        while self._got < len(body):
            self._got += await self._read_into(view[self._got :])
        self._head, self._body = b"", None
        return body

    def into_inner(self) -> mpc.Connection[Any, Any]:
        """Give the ``Connection`` back, blocking again (between messages)."""
        self._async.into_inner()
        return self._conn

    def close(self) -> None:
        self._async.into_inner()  # wake waiters, deregister; then close the Connection
        self._conn.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def _authenticate(conn: mpc.Connection[Any, Any], authkey: bytes, server: bool) -> None:
    steps = [_helpers.deliver_challenge, _helpers.answer_challenge]

    def handshake() -> None:
        try:
            for step in steps if server else steps[::-1]:
                step(conn, authkey)
        except BaseException:
            conn.close()
            raise

    waker = socket.socket(fileno=os.dup(conn.fileno()))  # our own fd of the same socket
    try:
        await run_sync(handshake, abandon_on_cancel=True)
    except BaseException:
        waker.shutdown(socket.SHUT_RDWR)  # a blocked recv in the thread returns: EOF
        raise
    finally:
        waker.close()


async def connect(address: Any, *, authkey: bytes | None = None) -> Conn:
    """Awaitable ``multiprocessing.connection.Client(address, authkey=authkey)``."""
    wrapped = Async(socket.socket(getattr(socket, _helpers.address_type(address))))
    try:
        await wrapped.connect(address)
    except BaseException:
        wrapped.close()
        raise
    conn = mpc.Connection(wrapped.into_inner().detach())
    if authkey is not None:
        await _authenticate(conn, authkey, server=False)
    return Conn(conn)


class Listener:
    """Awaitable ``multiprocessing.connection.Listener`` (socket families)."""

    def __init__(
        self,
        address: Any = None,
        family: str | None = None,
        backlog: int = 1,
        authkey: bytes | None = None,
    ) -> None:
        kind: str = family or (
            _helpers.address_type(address) if address else _helpers.default_family
        )
        address = address or _helpers.arbitrary_address(kind)
        self._authkey, self._family = authkey, kind
        sock = socket.socket(getattr(socket, kind))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(backlog)
            self._async = Async(sock)
        except BaseException:
            sock.close()
            raise
        self.address = sock.getsockname()

    async def accept(self) -> Conn:
        wrapped, _ = await self._async.accept()
        conn = mpc.Connection(wrapped.into_inner().detach())
        if self._authkey is not None:
            await _authenticate(conn, self._authkey, server=True)
        return Conn(conn)

    def close(self) -> None:
        if not self._async.closed:
            self._async.close()
            if isinstance(self.address, str) and self._family == "AF_UNIX":
                os.unlink(self.address)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
