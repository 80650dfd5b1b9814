"""Shims generated from ``_spec.py`` by ``python -m adapt._shims._generate``.

Do not edit: change the catalog (or ``adapt/_shims/_base.py``) and regenerate.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Self, TypeVar

from .._errors import READ, WRITE
from ._base import (
    ConnectionBase,
    FDBase,
    FileIOBase,
    SocketBase,
    SSLBase,
    message_ready,
    not_yet,
    room_to_send,
    some_or_block,
)

if TYPE_CHECKING:
    import io
    import multiprocessing.connection
    import socket
    import ssl

    from _typeshed import ReadableBuffer, WriteableBuffer

    from .._core._async import ExcTypes

__all__ = ["AsyncConnection", "AsyncFD", "AsyncFileIO", "AsyncSSLSocket", "AsyncSocket"]

_R = TypeVar("_R")
_S = TypeVar("_S")


class AsyncSocket(SocketBase, wraps="socket.socket"):
    """A ``socket.socket`` (TCP, UDP, Unix, raw...).

    ::

        data = sock.recv(1024)                 # sync
        data = await Async(sock).recv(1024)    # async
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __new__(
            cls, obj: socket.socket, *, nonblocking: bool = True, would_block: ExcTypes = ()
        ) -> Self: ...

    def recv(self, bufsize: int, flags: int = 0, /) -> Coroutine[Any, Any, bytes]:
        """Awaitable ``sock.recv(bufsize, flags)``.

        Waits until readable while the call would block.
        """
        if flags == 0:
            return self._io(self._obj.recv, READ, bufsize, True)
        return self._io(lambda sock: sock.recv(bufsize, flags), READ, self._obj)

    def recv_into(
        self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0
    ) -> Coroutine[Any, Any, int]:
        """Awaitable ``sock.recv_into(buffer, nbytes, flags)``.

        Waits until readable while the call would block.
        """
        if nbytes == 0 and flags == 0:
            return self._io(self._obj.recv_into, READ, buffer, True)
        return self._io(lambda sock: sock.recv_into(buffer, nbytes, flags), READ, self._obj)

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> Coroutine[Any, Any, tuple[bytes, Any]]:
        """Awaitable ``sock.recvfrom(bufsize, flags)``.

        Waits until readable while the call would block.
        """
        if flags == 0:
            return self._io(self._obj.recvfrom, READ, bufsize, True)
        return self._io(lambda sock: sock.recvfrom(bufsize, flags), READ, self._obj)

    def recvfrom_into(
        self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0
    ) -> Coroutine[Any, Any, tuple[int, Any]]:
        """Awaitable ``sock.recvfrom_into(buffer, nbytes, flags)``.

        Waits until readable while the call would block.
        """
        if nbytes == 0 and flags == 0:
            return self._io(self._obj.recvfrom_into, READ, buffer, True)
        return self._io(lambda sock: sock.recvfrom_into(buffer, nbytes, flags), READ, self._obj)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> Coroutine[Any, Any, tuple[bytes, list[tuple[int, int, bytes]], int, Any]]:
        """Awaitable ``sock.recvmsg(bufsize, ancbufsize, flags)``.

        Waits until readable while the call would block.
        """
        if ancbufsize == 0 and flags == 0:
            return self._io(self._obj.recvmsg, READ, bufsize, True)
        return self._io(lambda sock: sock.recvmsg(bufsize, ancbufsize, flags), READ, self._obj)

    def send(self, data: ReadableBuffer, flags: int = 0, /) -> Coroutine[Any, Any, int]:
        """Awaitable ``sock.send(data, flags)``.

        Waits until writable while the call would block.
        """
        if flags == 0:
            return self._io(self._obj.send, WRITE, data, True)
        return self._io(lambda sock: sock.send(data, flags), WRITE, self._obj)

    def recvmsg_into(
        self, buffers: Iterable[WriteableBuffer], ancbufsize: int = 0, flags: int = 0, /
    ) -> Coroutine[Any, Any, tuple[int, list[tuple[int, int, bytes]], int, Any]]:
        """Awaitable ``sock.recvmsg_into(buffers, ancbufsize, flags)``.

        Waits until readable while the call would block.
        """
        if ancbufsize == 0 and flags == 0:
            return self._io(self._obj.recvmsg_into, READ, buffers, True)
        return self._io(lambda sock: sock.recvmsg_into(buffers, ancbufsize, flags), READ, self._obj)

    def sendmsg(
        self,
        buffers: Iterable[ReadableBuffer],
        ancdata: Iterable[tuple[int, int, ReadableBuffer]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> Coroutine[Any, Any, int]:
        """Awaitable ``sock.sendmsg(buffers, ancdata, flags, address)``.

        Waits until writable while the call would block.
        """
        return self._io(
            lambda sock: sock.sendmsg(buffers, ancdata, flags, address), WRITE, self._obj, True
        )


class AsyncSSLSocket(SSLBase, wraps="ssl.SSLSocket"):
    """An ``ssl.SSLSocket``.  Wrap it with ``do_handshake_on_connect=False``
    (the socket is non-blocking) and ``await a.do_handshake()``.  Reads return
    data OpenSSL already decrypted (``pending()``) without waiting, and
    :meth:`~adapt.Async.readable` returns at once while there is some.

    ::

        data = tls.recv(1024)                 # sync
        data = await Async(tls).recv(1024)    # async
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __new__(
            cls, obj: ssl.SSLSocket, *, nonblocking: bool = True, would_block: ExcTypes = ()
        ) -> Self: ...

    def recv(self, buflen: int = 1024, flags: int = 0) -> Coroutine[Any, Any, bytes]:
        """Awaitable ``tls.recv(buflen, flags)``.

        Waits until readable while the call would block.
        OpenSSL may ask to wait in the other direction (renegotiation).
        """
        return self._io(lambda tls: tls.recv(buflen, flags), READ, self._obj)

    def recv_into(
        self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0
    ) -> Coroutine[Any, Any, int]:
        """Awaitable ``tls.recv_into(buffer, nbytes, flags)``.

        Waits until readable while the call would block.
        OpenSSL may ask to wait in the other direction (renegotiation).
        """
        return self._io(lambda tls: tls.recv_into(buffer, nbytes, flags), READ, self._obj)

    def send(self, data: ReadableBuffer, flags: int = 0) -> Coroutine[Any, Any, int]:
        """Awaitable ``tls.send(data, flags)``.

        Waits until writable while the call would block.
        OpenSSL may ask to wait in the other direction (renegotiation).
        """
        return self._io(lambda tls: tls.send(data, flags), WRITE, self._obj)

    def do_handshake(self) -> Coroutine[Any, Any, None]:
        """Awaitable ``tls.do_handshake()``.

        Waits until readable while the call would block.
        Waits in whichever direction OpenSSL asks.
        """
        return self._io(lambda tls: tls.do_handshake(), READ, self._obj)

    def unwrap(self) -> Coroutine[Any, Any, socket.socket]:
        """Awaitable ``tls.unwrap()``.

        Waits until readable while the call would block.
        Sends close_notify, waits for the peer's; returns the plain socket.
        """
        return self._io(lambda tls: tls.unwrap(), READ, self._obj)


class AsyncFileIO(FileIOBase, wraps="io.FileIO"):
    """An unbuffered ``io.FileIO`` over a pipe, FIFO, pty or character device
    (``open(path, "rb", buffering=0)``, ``Popen(..., bufsize=0).stdout``).
    ``FileIO`` returns ``None`` when it would block; the shims wait instead.

    ::

        data = f.read(4096)                 # sync
        data = await Async(f).read(4096)    # async
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __new__(
            cls, obj: io.FileIO, *, nonblocking: bool = True, would_block: ExcTypes = ()
        ) -> Self: ...

    def write(self, b: ReadableBuffer, /) -> Coroutine[Any, Any, int]:
        """Awaitable ``f.write(b)``.

        Waits until writable while the call would block (returns ``None``).
        """
        return self._io(lambda f: some_or_block(f.write(b)), WRITE, self._obj, True)


class AsyncConnection(
    ConnectionBase[_S, _R], wraps="multiprocessing.connection.Connection", nonblocking=False
):
    """A ``multiprocessing.connection.Connection`` (``Pipe()``, ``Client``,
    ``Listener.accept()``).  It has no non-blocking mode, so its fd stays
    blocking: a read runs once ``poll(0)`` says a message has started to
    arrive, a write once the fd is writable.  A message larger than the
    socket buffer still blocks the loop until the peer has received it.

    ::

        obj = conn.recv()                 # sync
        obj = await Async(conn).recv()    # async
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __new__(
            cls,
            obj: multiprocessing.connection.Connection[_S, _R],
            *,
            nonblocking: bool = False,
            would_block: ExcTypes = (),
        ) -> Self: ...

    def recv(self) -> Coroutine[Any, Any, _R]:
        """Awaitable ``c.recv()``.

        Waits until readable while the call would block; runs the call only once
        ``message_ready(c)`` is true.
        """
        return self._io(lambda c: c.recv() if message_ready(c) else not_yet(), READ, self._obj)

    def recv_bytes(self, maxlength: int | None = None) -> Coroutine[Any, Any, bytes]:
        """Awaitable ``c.recv_bytes(maxlength)``.

        Waits until readable while the call would block; runs the call only once
        ``message_ready(c)`` is true.
        """
        return self._io(
            lambda c: c.recv_bytes(maxlength) if message_ready(c) else not_yet(), READ, self._obj
        )

    def recv_bytes_into(self, buf: Any, offset: int = 0) -> Coroutine[Any, Any, int]:
        """Awaitable ``c.recv_bytes_into(buf, offset)``.

        Waits until readable while the call would block; runs the call only once
        ``message_ready(c)`` is true.
        """
        return self._io(
            lambda c: c.recv_bytes_into(buf, offset) if message_ready(c) else not_yet(),
            READ,
            self._obj,
        )

    def send(self, obj: _S) -> Coroutine[Any, Any, None]:
        """Awaitable ``c.send(obj)``.

        Waits until writable while the call would block; runs the call only once ``room_to_send(c)``
        is true.
        """
        return self._io(lambda c: c.send(obj) if room_to_send(c) else not_yet(), WRITE, self._obj)

    def send_bytes(
        self, buf: ReadableBuffer, offset: int = 0, size: int | None = None
    ) -> Coroutine[Any, Any, None]:
        """Awaitable ``c.send_bytes(buf, offset, size)``.

        Waits until writable while the call would block; runs the call only once ``room_to_send(c)``
        is true.
        """
        return self._io(
            lambda c: c.send_bytes(buf, offset, size) if room_to_send(c) else not_yet(),
            WRITE,
            self._obj,
        )


class AsyncFD(FDBase, wraps="builtins.int"):
    """A raw int fd (pipe, pty, eventfd, inotify...): ``os.read`` and
    ``os.write`` on it.

    ::

        data = os.read(fd, 4096)             # sync
        data = await Async(fd).read(4096)    # async
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def __new__(
            cls, obj: int, *, nonblocking: bool = True, would_block: ExcTypes = ()
        ) -> Self: ...

    def read(self, n: int, /) -> Coroutine[Any, Any, bytes]:
        """Awaitable ``os.read(fd, n)``.

        Waits until readable while the call would block.
        """
        return self._io(lambda fd: os.read(fd, n), READ, self._obj)

    def readinto(self, buffer: WriteableBuffer, /) -> Coroutine[Any, Any, int]:
        """Awaitable ``os.readv(fd, [buffer])``.

        Waits until readable while the call would block.
        Fills ``buffer``, returns the count read.
        """
        return self._io(lambda fd: os.readv(fd, [buffer]), READ, self._obj)

    def write(self, data: ReadableBuffer, /) -> Coroutine[Any, Any, int]:
        """Awaitable ``os.write(fd, data)``.

        Waits until writable while the call would block.
        Returns the count written.
        """
        return self._io(lambda fd: os.write(fd, data), WRITE, self._obj)
