"""Hand-written parts of the built-in shims, and the helpers generated ops use.

The generated classes in ``adapt/_shims/_gen.py`` derive from the bases here,
which hold the shims that are more than "call, and wait while it would
block" (``sendall``, ``accept``, ``connect``, ``FileIO.read(-1)``...).  Like
the generated ones, they are explicit ``async`` methods of the wrapper: the
sync object is never touched.
"""

from __future__ import annotations

import errno
import io
import os
import select
import socket
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from .._backends import current_backend
from .._core._async import Async
from .._errors import READ, WRITE, ClosedResourceError, WouldBlock

if TYPE_CHECKING:
    import multiprocessing.connection
    import ssl  # noqa: F401 (in a string base class below)

    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._gen import AsyncSocket

__all__ = [
    "ConnectionBase",
    "FDBase",
    "FileIOBase",
    "SSLBase",
    "SocketBase",
    "message_ready",
    "not_yet",
    "room_to_send",
    "some_or_block",
    "writable_now",
]

_T = TypeVar("_T")
_S = TypeVar("_S")
_R = TypeVar("_R")
_Sock = TypeVar("_Sock", bound=socket.socket)


def some_or_block(result: _T | None) -> _T:
    """``None`` means "would block" (``FileIO`` on EAGAIN)."""
    if result is None:
        raise WouldBlock
    return result


def not_yet() -> NoReturn:
    """The object is not ready: wait in the op's direction and try again."""
    raise WouldBlock


def writable_now(obj: Any) -> bool:
    """Whether ``obj``'s fd is writable right now (a zero-timeout poll)."""
    poller = select.poll()
    poller.register(obj.fileno(), select.POLLOUT)
    return bool(poller.poll(0))


def _blocking(fd: int) -> None:
    # libuv (uvloop) puts every fd it polls in non-blocking mode, and a
    # multiprocessing connection cannot be used in that mode: a message cut by
    # EAGAIN is lost half-sent.
    if not os.get_blocking(fd):
        os.set_blocking(fd, True)


def message_ready(conn: Any) -> bool:
    """A message has started to arrive on a multiprocessing connection."""
    if not conn.poll(0):
        return False
    _blocking(conn.fileno())
    return True


def room_to_send(conn: Any) -> bool:
    """A multiprocessing connection's fd is writable."""
    if not writable_now(conn):
        return False
    _blocking(conn.fileno())
    return True


def _send(sock: socket.socket, chunk: memoryview, flags: int) -> int:
    return sock.send(chunk, flags)


class _SendAll(Async[_Sock]):
    __slots__ = ()

    async def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        """Awaitable ``sock.sendall(data, flags)``: sends until all of ``data`` is sent.

        ::

            sock.sendall(data)                    # sync
            await Async(sock).sendall(data)       # async

        If cancelled part-way, some of ``data`` may have been sent (so does
        every event loop's ``sendall``).
        """
        with memoryview(data) as view, view.cast("B") as rest:
            while rest:
                if flags == 0:
                    sent = await self._io(self._obj.send, WRITE, rest, True)
                else:
                    sent = await self._io(partial(_send, chunk=rest, flags=flags), WRITE, self._obj)
                rest = rest[sent:]


class SocketBase(_SendAll[socket.socket]):
    """Base of :class:`~adapt.AsyncSocket`: its hand-written shims."""

    __slots__ = ()

    async def accept(self) -> tuple[AsyncSocket, Any]:
        """Awaitable ``sock.accept()``; the connection comes back wrapped.

        ::

            conn, addr = sock.accept()                  # sync
            conn, addr = await Async(sock).accept()     # async: Async(conn)
        """
        conn: socket.socket
        conn, address = await self._io(lambda s: s.accept(), READ, self._obj, True)
        try:
            return Async(conn), address
        except BaseException:
            conn.close()
            raise

    async def connect(self, address: Any, /) -> None:
        """Awaitable ``sock.connect(address)``: ``EINPROGRESS``, then ``SO_ERROR``.

        ::

            sock.connect(("example.org", 80))                 # sync
            await Async(sock).connect(("example.org", 80))    # async

        Cancelled (or failed) while the connection is in progress, it closes
        the wrapper and the socket, as trio does: a half-made connection
        cannot be taken back, and must not be used by mistake.
        """
        sock = self._obj
        try:
            while True:
                if self._closed:
                    raise ClosedResourceError("the object is closed")
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
        except BaseException:
            if not self._closed:
                self.close()
            raise
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"connect to {address!r} failed: {os.strerror(err)}")

    @overload
    def sendto(self, data: ReadableBuffer, address: Any, /) -> Coroutine[Any, Any, int]: ...

    @overload
    def sendto(
        self, data: ReadableBuffer, flags: int, address: Any, /
    ) -> Coroutine[Any, Any, int]: ...

    def sendto(
        self, data: ReadableBuffer, flags_or_address: Any, address: Any = None, /
    ) -> Coroutine[Any, Any, int]:
        """Awaitable ``sock.sendto(data, address)`` or ``sock.sendto(data, flags, address)``.

        ::

            sock.sendto(b"ping", ("127.0.0.1", 9))                 # sync
            await Async(sock).sendto(b"ping", ("127.0.0.1", 9))    # async
        """
        if address is None:
            return self._io(lambda s: s.sendto(data, flags_or_address), WRITE, self._obj, True)
        return self._io(lambda s: s.sendto(data, flags_or_address, address), WRITE, self._obj, True)


class SSLBase(_SendAll["ssl.SSLSocket"]):
    """Base of :class:`~adapt.AsyncSSLSocket`: its hand-written shims."""

    __slots__ = ()

    async def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        """Awaitable ``tls.sendall(data, flags)``: sends until all of ``data`` is sent.

        ::

            tls.sendall(data)                    # sync
            await Async(tls).sendall(data)       # async
        """
        await super().sendall(data, flags)

    async def readable(self) -> None:
        """Wait until there is data to read: returns at once while OpenSSL
        holds decrypted data (``pending()``), which the fd does not show.

        ::

            select.select([tls], [], [])     # sync (misses pending() data)
            await Async(tls).readable()      # async
        """
        if self._closed:
            raise ClosedResourceError("the object is closed")
        if self._obj.pending():
            await current_backend().checkpoint()
            return
        await self._wait(READ)


class FileIOBase(Async[io.FileIO]):
    """Base of :class:`~adapt.AsyncFileIO`: its hand-written shims."""

    # bytes a cancelled read to end of file had read: the next read returns
    # them first (unset until then)
    __slots__ = ("_kept",)
    _kept: bytes

    def _take_kept(self, size: int) -> bytes:
        try:
            kept = self._kept
        except AttributeError:
            return b""
        if size < 0:
            size = len(kept)
        self._kept = kept[size:]
        return kept[:size]

    def read(self, size: int | None = -1, /) -> Coroutine[Any, Any, bytes]:
        """Awaitable ``f.read(size)``: with a negative or no size, until end of file.

        ::

            data = f.read(4096)                   # sync
            data = await Async(f).read(4096)      # async
        """
        if size is None or size < 0:
            return self.readall()
        if getattr(self, "_kept", None):
            return _ready(self._take_kept(size))
        return self._io(lambda f: some_or_block(f.read(size)), READ, self._obj, True)

    async def readall(self) -> bytes:
        """Awaitable ``f.readall()``: reads until end of file.

        ::

            data = f.readall()                    # sync
            data = await Async(f).readall()       # async

        Cancelled (or failed) part-way, the bytes read so far are kept: the
        next ``read()``, ``readall()`` or ``readinto()`` returns them first.
        """
        parts = [self._take_kept(-1)]
        obj = self._obj
        try:
            while chunk := await self._io(lambda f: some_or_block(f.readall()), READ, obj, True):
                parts.append(chunk)
        except BaseException:
            self._kept = b"".join(parts)
            raise
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> Coroutine[Any, Any, int]:
        """Awaitable ``f.readinto(buffer)``.

        ::

            n = f.readinto(buf)                   # sync
            n = await Async(f).readinto(buf)      # async
        """
        if getattr(self, "_kept", None):
            with memoryview(buffer) as view, view.cast("B") as target:
                data = self._take_kept(len(target))
                target[: len(data)] = data
            return _ready(len(data))
        return self._io(lambda f: some_or_block(f.readinto(buffer)), READ, self._obj, True)


async def _ready(value: _T) -> _T:
    return value


class ConnectionBase(Async["multiprocessing.connection.Connection[_S, _R]"], Generic[_S, _R]):
    """Base of :class:`~adapt.AsyncConnection`."""

    __slots__ = ()

    def into_inner(self) -> multiprocessing.connection.Connection[_S, _R]:
        """Stop adapting; the connection's fd is left in blocking mode."""
        conn = super().into_inner()
        if not conn.closed:
            _blocking(conn.fileno())
        return conn


class FDBase(Async[int]):
    """Base of :class:`~adapt.AsyncFD`."""

    __slots__ = ()
