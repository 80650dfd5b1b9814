"""Typed shims: async twins of the sync methods of common wrapped types.

Each shim delegates to ``Async._io`` (the engine behind ``read_with`` and
``write_with``) with the same arguments as the sync method, so a shim costs
one closure over a hand-written ``read_with(lambda s: s.recv(n))``.  Shims
are plain methods returning a coroutine (not ``async def``): that saves a
coroutine frame per call on the hot path.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

from ._async import Async, ExcTypes
from ._errors import READ, WRITE

__all__ = ["AsyncFD", "AsyncSocket"]

_Address = Any


class AsyncSocket(Async[socket.socket], wraps=socket.socket):
    """``Async`` for a ``socket.socket``: awaitable ``recv``, ``send``, ``accept``...

    ::

        conn, addr = sock.accept()                  # sync
        conn, addr = await Async(sock).accept()     # async: conn is an AsyncSocket
    """

    __slots__ = ()

    def __new__(
        cls, obj: socket.socket, *, nonblocking: bool = True, would_block: ExcTypes = ()
    ) -> Self:
        return cls._create(obj, nonblocking, would_block)

    def recv(self, bufsize: int, flags: int = 0, /) -> Coroutine[Any, Any, bytes]:
        """``sock.recv(bufsize[, flags])``, awaitable."""
        return self._io(lambda s: s.recv(bufsize, flags), READ)

    def recv_into(
        self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0, /
    ) -> Coroutine[Any, Any, int]:
        """``sock.recv_into(buffer[, nbytes[, flags]])``, awaitable."""
        return self._io(lambda s: s.recv_into(buffer, nbytes, flags), READ)

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> Coroutine[Any, Any, tuple[bytes, _Address]]:
        """``sock.recvfrom(bufsize[, flags])``, awaitable."""
        return self._io(lambda s: s.recvfrom(bufsize, flags), READ)

    def send(self, data: ReadableBuffer, flags: int = 0, /) -> Coroutine[Any, Any, int]:
        """``sock.send(data[, flags])``, awaitable."""
        return self._io(lambda s: s.send(data, flags), WRITE)

    def sendto(self, data: ReadableBuffer, address: _Address, /) -> Coroutine[Any, Any, int]:
        """``sock.sendto(data, address)``, awaitable."""
        return self._io(lambda s: s.sendto(data, address), WRITE)

    async def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        """``sock.sendall(data[, flags])``, awaitable.

        If cancelled part-way, some of ``data`` may have been sent (as with
        every peer's ``sendall``).
        """
        with memoryview(data) as view, view.cast("B") as rest:
            while rest:
                sent = await self._io(lambda s: s.send(rest, flags), WRITE)
                rest = rest[sent:]

    async def accept(self) -> tuple[AsyncSocket, _Address]:
        """``sock.accept()``, awaitable; the connection comes wrapped."""
        conn, address = await self._io(lambda s: s.accept(), READ)
        try:
            return AsyncSocket(conn), address
        except BaseException:
            conn.close()
            raise

    async def connect(self, address: _Address, /) -> None:
        """``sock.connect(address)``, awaitable (EINPROGRESS, then SO_ERROR)."""
        sock = self._obj
        while True:
            try:
                sock.connect(address)
                return
            except InterruptedError:
                continue
            except BlockingIOError as exc:
                if exc.errno != errno.EINPROGRESS:
                    await self._wait(WRITE)  # AF_UNIX backlog full: EAGAIN, retry
                    continue
            break
        await self._wait(WRITE)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"connect to {address!r} failed: {os.strerror(err)}")


class AsyncFD(Async[int], wraps=int):
    """``Async`` for a raw fd (pipe, pty, eventfd, inotify...): ``os.read``/``os.write``.

    ::

        data = os.read(fd, 4096)              # sync
        data = await Async(fd).read(4096)     # async
    """

    __slots__ = ()

    def __new__(cls, obj: int, *, nonblocking: bool = True, would_block: ExcTypes = ()) -> Self:
        return cls._create(obj, nonblocking, would_block)

    def read(self, n: int, /) -> Coroutine[Any, Any, bytes]:
        """``os.read(fd, n)``, awaitable."""
        return self._io(lambda fd: os.read(fd, n), READ)

    def readinto(self, buffer: WriteableBuffer, /) -> Coroutine[Any, Any, int]:
        """``os.readv(fd, [buffer])``, awaitable: fills ``buffer``, returns the count."""
        return self._io(lambda fd: os.readv(fd, [buffer]), READ)

    def write(self, data: ReadableBuffer, /) -> Coroutine[Any, Any, int]:
        """``os.write(fd, data)``, awaitable: returns the count written."""
        return self._io(lambda fd: os.write(fd, data), WRITE)
