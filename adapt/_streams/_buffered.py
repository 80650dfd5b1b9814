"""``BufferedStream``: lines, exact reads and whole writes over any wrapper.

Theory of operation
-------------------
A readiness wrapper moves what the kernel has: ``recv`` returns any number
of bytes, ``send`` takes some of them.  Protocols want lines, records of a
known size and whole messages; this layer sits on :meth:`Async.read_with` /
:meth:`Async.write_with` (the public API only, no thread) and keeps one
receive buffer.

* **One buffer, one cursor.**  Received bytes live in one buffer and a
  cursor marks what was already handed out, so nothing is shifted per
  line; the consumed head is dropped only when more data arrives.  The
  buffer is the ``bytes`` a read returned, as it is, while it holds at most
  the tail of the previous read: a line sliced from ``bytes`` is copied
  once, from a ``bytearray`` twice (slice, then ``bytes()``), and the
  second copy cost about 80 ns of a 600 ns ``readline`` -- measured with
  32-byte lines, ``benchmarks/bench_subprocess.py``.  A record that spans
  more than two reads switches the buffer to a ``bytearray`` that grows in
  place, so gathering it costs linear time (joining ``bytes`` on every read
  made a 10 MB ``read()`` over 4 KB pty reads quadratic).
* **No await while the buffer can answer.**  ``readline()`` on a buffer that
  holds a line returns it without touching the loop -- like asyncio's
  ``StreamReader``.  The core's budget still yields to the loop every 64
  ops, so a busy stream cannot starve the other tasks for long.
* **Cancellation loses nothing.**  The buffer grows only after
  ``read_with`` returned, and a cancelled ``read_with`` consumed nothing; a
  cancelled ``readexactly()`` or ``readuntil()`` leaves what it had gathered
  in the buffer for the next call.  (A cancelled ``write_all`` may have sent
  a prefix: the kernel has those bytes.)
* **Limits keep data.**  A line or record longer than ``limit`` raises
  :class:`LimitOverrunError` and leaves every byte in the buffer (asyncio's
  ``readline`` throws them away), so the caller can ``read(n)`` past it or
  close.
* **EOF is b"".**  A socket's empty ``recv``, a pipe's empty ``read`` -- and
  a pty master's ``EIO`` once the other side is gone -- all end the stream.
  On a socket or a pipe the end is final, and every later read returns
  ``b""`` at once (asyncio's ``StreamReader`` does the same).  On a terminal
  it is not: Ctrl-D ends one read and the user types on, a pty master whose
  other side is opened again has data again, a serial port says nothing
  of ends.  So on a tty (and with ``sticky_eof=False``) each read call that
  finds the buffer empty after an end asks the object again; one call
  still reports one end (``async for`` stops, ``read()`` returns), and a
  new call reads on.

How bytes move depends on the wrapped object: sockets (TLS ones too) use
``recv`` / ``send`` (an ``SSLSocket`` must: its bytes pass through OpenSSL),
everything else (pipes, ``FileIO``, int fds, ptys, serial ports) uses
``os.read`` / ``os.write`` on the fd.  A library with calls of its own
(pyserial's ``Serial.read``, pexpect's ``read_nonblocking``) passes them as
``read=`` / ``write=``; they run inside ``read_with`` / ``write_with`` like
the built-in ones, and say "would block" by returning ``None`` (the
convention of ``io.RawIOBase``) or raising a would-block exception.
Buffering file objects are refused: their own buffer would hide data from
the poller.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
from collections.abc import Callable
from operator import methodcaller
from typing import Any, TypeAlias, TypeGuard

from .._core._async import Async
from .._errors import WouldBlock
from .._resource import AsyncResource

__all__ = ["BufferedStream", "IncompleteReadError", "LimitOverrunError"]

DEFAULT_LIMIT = 64 * 1024
DEFAULT_CHUNK = 64 * 1024

#: ``read(obj, size)``: up to ``size`` bytes of the wrapped object; ``b""`` at
#: the end of the stream; ``None`` (or a would-block exception) for "nothing yet".
_ReadOp: TypeAlias = Callable[[Any, int], "bytes | bytearray | None"]
#: ``write(obj, data)``: how many bytes of ``data`` were taken; ``None`` (or a
#: would-block exception) for "none now".
_WriteOp: TypeAlias = Callable[[Any, memoryview], "int | None"]


class IncompleteReadError(EOFError):
    """The stream ended before ``readexactly()`` / ``readuntil()`` was satisfied.

    ``partial`` holds the bytes read before the end (they are consumed);
    ``expected`` is the size asked for, or ``None`` for ``readuntil``.
    """

    def __init__(self, partial: bytes, expected: int | None) -> None:
        wanted = "the separator" if expected is None else f"{expected} bytes"
        super().__init__(f"the stream ended after {len(partial)} bytes, before {wanted}")
        self.partial = partial
        self.expected = expected


class LimitOverrunError(ValueError):
    """A line or record is longer than the stream's ``limit``.

    Nothing was consumed: the bytes stay in the buffer, so the caller can
    skip them with ``read(n)``, read on with a larger ``limit``, or close.
    ``consumed`` is how many buffered bytes were searched.
    """

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message)
        self.consumed = consumed


def _fd_reader(fd: int, size: int, tty: bool) -> Callable[[object], bytes]:
    def receive(_: object) -> bytes:
        try:
            return os.read(fd, size)
        except OSError as exc:
            # a pty master reports the slave side's last close as EIO
            if tty and exc.errno == errno.EIO:
                return b""
            raise

    return receive


def _op_reader(read: _ReadOp, size: int) -> Callable[[object], bytes | bytearray]:
    def receive(obj: object) -> bytes | bytearray:
        data = read(obj, size)
        if data is None:
            raise WouldBlock  # the RawIOBase convention: wait until readable
        return data

    return receive


def _fd_write(fd: int) -> _WriteOp:
    return lambda _, data: os.write(fd, data)


def _socket_send(sock: socket.socket, data: memoryview) -> int:
    return sock.send(data)


def _is_wrapper(obj: object) -> TypeGuard[Async[Any]]:
    return isinstance(obj, Async)


class BufferedStream(AsyncResource):
    """Buffered reads (lines, separators, exact sizes) and whole writes.

    Wraps an :class:`~adapt.Async` wrapper, or an object to wrap (a socket,
    an ``ssl.SSLSocket``, a pipe or ``FileIO``, an int fd, a pty master, a
    serial port).  Closing the stream closes the wrapper and the object::

        line = sock.makefile("rb").readline()            # sync
        line = await BufferedStream(sock).readline()     # async

        async with BufferedStream(Async(sock)) as stream:
            await stream.write_all(b"HELO\\r\\n")
            async for line in stream:
                ...

    Method names follow asyncio's ``StreamReader`` (the ones most users
    know); unlike it, one object reads and writes, works on trio too, and a
    line over the limit costs no data.

    A library with its own read or write call hands it over; it runs inside
    ``read_with`` / ``write_with`` and returns ``None`` for "would block"::

        data = ser.read(4096)                    # sync, pyserial with timeout=0
        port = BufferedStream(ser, read=lambda s, n: s.read(n) or None)
        line = await port.readline()             # async

    Args:
        obj: the wrapper, or the object to wrap with ``Async(obj)``.
        limit: the longest line or record ``readline`` / ``readuntil``
            accept, separator included (:class:`LimitOverrunError` beyond).
        chunk_size: how much one read asks for.
        read: ``read(obj, size)`` instead of ``recv`` /
            ``os.read``: up to ``size`` bytes, ``b""`` at the end, ``None``
            or a would-block exception (``BlockingIOError``,
            :class:`~adapt.WouldBlock`, the wrapper's ``would_block=``) when
            nothing is there yet.
        write: ``write(obj, data)`` instead of ``send`` /
            ``os.write``: how many bytes it took, ``None`` or a would-block
            exception when none.
        sticky_eof: whether the end of the stream is final, so that reads
            after it return ``b""`` without asking the object (True), or
            each read call after it asks again (False: a terminal after
            Ctrl-D, a FIFO that a new writer opens).  Default: False on a
            tty, True on everything else.
    """

    __slots__ = (
        "_buf",
        "_chunk",
        "_eof",
        "_limit",
        "_pos",
        "_receive",
        "_reading",
        "_send",
        "_sticky",
        "_unsent",
        "_wrapper",
        "_writing",
    )

    def __init__(
        self,
        obj: object,
        *,
        limit: int = DEFAULT_LIMIT,
        chunk_size: int = DEFAULT_CHUNK,
        read: _ReadOp | None = None,
        write: _WriteOp | None = None,
        sticky_eof: bool | None = None,
    ) -> None:
        for name, value in (("limit", limit), ("chunk_size", chunk_size)):
            if type(value) is not int or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, op in (("read", read), ("write", write)):
            if op is not None and not callable(op):
                raise TypeError(f"{name} must be a callable taking (obj, ...), got {op!r}")
        if sticky_eof is not None and type(sticky_eof) is not bool:
            raise TypeError(f"sticky_eof must be a bool or None, got {sticky_eof!r}")
        wrapped = obj if _is_wrapper(obj) else None
        inner = obj if wrapped is None else wrapped.get_ref()
        if isinstance(inner, io.BufferedIOBase | io.TextIOBase):
            raise TypeError(
                f"{type(inner).__name__} keeps its own buffer, which the poller cannot see: "
                "open the file unbuffered (buffering=0, or Popen(..., bufsize=0)) "
                "or pass its fileno()"
            )
        wrapper: Async[Any] = Async(obj) if wrapped is None else wrapped
        self._wrapper = wrapper
        self._limit = limit
        self._chunk = chunk_size
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._reading = False  # a read call is under way (one reader at a time)
        self._writing = False
        #: the rest of a TLS write that was cancelled after OpenSSL took it in
        self._unsent: bytes | None = None
        tty = os.isatty(wrapper.fileno())
        self._sticky = not tty if sticky_eof is None else sticky_eof
        is_socket = isinstance(inner, socket.socket)
        self._receive: Callable[[Any], bytes | bytearray]
        if read is not None:
            self._receive = _op_reader(read, chunk_size)
        elif is_socket:
            self._receive = methodcaller("recv", chunk_size)
        else:
            self._receive = _fd_reader(wrapper.fileno(), chunk_size, tty)
        self._send: _WriteOp
        if write is not None:
            self._send = write
        else:
            self._send = _socket_send if is_socket else _fd_write(wrapper.fileno())

    @property
    def wrapper(self) -> Async[Any]:
        """The :class:`~adapt.Async` wrapper underneath (for other ops)."""
        return self._wrapper

    def get_ref(self) -> Any:
        """The wrapped sync object, unchanged."""
        return self._wrapper.get_ref()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned."""
        return len(self._buf) - self._pos

    def at_eof(self) -> bool:
        """True once the stream ended (on a tty: the last read found the end)
        and the buffer is empty."""
        return self._eof and self._pos == len(self._buf)

    # -- reading -----------------------------------------------------------

    async def _receive_once(self) -> bytes | bytearray:
        """One read of the object; b"" at the end of the stream."""
        if self._eof and self._sticky:
            return b""
        data = await self._wrapper.read_with(self._receive)
        self._eof = not data  # on a tty, a read after the end may find more
        return data

    async def _fill(self) -> bool:
        """Append one read's worth to the buffer; False at end of stream."""
        data = await self._receive_once()
        if not data:
            return False
        buf, pos = self._buf, self._pos
        rest = len(buf) - pos
        if rest == 0 and type(data) is bytes:
            self._buf = data  # all handed out: the read's bytes, uncopied
        elif rest <= len(data):
            # a line cut in two by the read: one bytes object, one copy of both
            with memoryview(buf) as view:
                self._buf = b"".join((view[pos:], data))
        elif isinstance(buf, bytearray):
            del buf[:pos]
            buf += data
        else:
            self._buf = bytearray(buf[pos:]) + data  # a long record: grow in place from now on
        self._pos = 0
        return True

    def _take(self, end: int) -> bytes:
        pos = self._pos
        self._pos = end
        taken = self._buf[pos:end]
        return taken if type(taken) is bytes else bytes(taken)

    def _claim(self) -> None:
        """Mark a read call under way; refuse a second reader.

        A read call may wait with bytes in hand (a record cut in two); one
        from another task, even if served from the buffer, would move the
        cursor under it.
        """
        if self._reading:
            raise RuntimeError("another task is already reading from this stream")
        self._reading = True

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including ``separator``.

        Raises :class:`IncompleteReadError` (with what was read) if the
        stream ends first, :class:`LimitOverrunError` (consuming nothing) if
        no separator comes within ``limit`` bytes::

            record = f.read_until(b"\\0")                     # sync, sketched
            record = await stream.readuntil(b"\\0")           # async
        """
        if len(separator) == 0:
            raise ValueError("the separator must not be empty")
        self._claim()
        try:
            return await self._readuntil(separator)
        finally:
            self._reading = False

    async def _readuntil(self, separator: bytes) -> bytes:
        size = len(separator)
        start = self._pos
        while True:
            buf = self._buf
            end = buf.find(separator, start)
            if end >= 0:
                end += size
                if end - self._pos > self._limit:
                    raise LimitOverrunError(
                        f"a record of {end - self._pos} bytes is over the limit of {self._limit} "
                        "(nothing was consumed)",
                        end - self._pos,
                    )
                return self._take(end)
            have = len(buf) - self._pos
            if have >= self._limit:
                raise LimitOverrunError(
                    f"no separator within the limit of {self._limit} bytes (nothing was consumed)",
                    have,
                )
            # the separator may straddle the old and the new data
            start = max(0, have - size + 1)
            if not await self._fill():
                partial = self._take(len(self._buf))
                raise IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        """Read one line, ``b"\\n"`` included; at the end, what is left (maybe b"").

        ::

            line = file.readline()                # sync
            line = await stream.readline()        # async
        """
        self._claim()
        try:
            # the common case first: a whole line is buffered
            buf = self._buf
            pos = self._pos
            end = buf.find(b"\n", pos)
            if end >= 0 and end - pos < self._limit:
                self._pos = end + 1
                line = buf[pos : end + 1]
                return line if type(line) is bytes else bytes(line)
            try:
                return await self._readuntil(b"\n")
            except IncompleteReadError as exc:
                return exc.partial
        finally:
            self._reading = False

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes, or raise :class:`IncompleteReadError`.

        ::

            header = recv_exactly(sock, 8)                # sync, hand-written
            header = await stream.readexactly(8)          # async
        """
        if type(n) is not int or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        self._claim()
        try:
            while len(self._buf) - self._pos < n:
                if not await self._fill():
                    raise IncompleteReadError(self._take(len(self._buf)), n)
            return self._take(self._pos + n)
        finally:
            self._reading = False

    async def read(self, n: int = -1) -> bytes:
        """``read(n)``: up to ``n`` bytes, as soon as any are there (b"" at the
        end); ``read()``: everything up to the end of the stream.

        ::

            data = sock.recv(4096)                # sync
            data = await stream.read(4096)        # async
        """
        if type(n) is not int:
            raise TypeError(f"n must be an int, got {n!r}")
        if n == 0:
            return b""
        self._claim()
        try:
            if n < 0:
                while await self._fill():
                    pass
                return self._take(len(self._buf))
            if self._pos == len(self._buf):
                # nothing buffered: hand over what one read brings without
                # copying it in and out of the buffer (16 MiB in a serial
                # port's 4 KiB reads, as benchmarks/bench_serial.py: 6% less
                # CPU, median of 11 runs interleaved with the copying version)
                data = await self._receive_once()
                if len(data) <= n and type(data) is bytes:
                    return data
                self._buf = data if type(data) is bytes else bytes(data)  # (a hook's may be reused)
                self._pos = 0
            return self._take(min(self._pos + n, len(self._buf)))
        finally:
            self._reading = False

    def __aiter__(self) -> BufferedStream:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing -----------------------------------------------------------

    async def write_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, however many writes it takes.

        ::

            sock.sendall(data)                    # sync
            await stream.write_all(data)          # async

        One writer at a time: a second task's ``write_all`` meanwhile raises
        ``RuntimeError`` (as a second reader does).  Cancelled, it has sent a
        prefix of ``data``; on a TLS socket OpenSSL may hold part of the rest
        already, so the rest is sent, whole, before the next write's data.
        """
        if self._writing:
            raise RuntimeError("another task is already writing to this stream")
        self._writing = True
        try:
            if self._unsent is not None:
                # OpenSSL took in part of a cancelled write's rest: it must be
                # sent first, and whole, or the next write's bytes go astray
                await self._send_all(memoryview(self._unsent))
                self._unsent = None
            await self._send_all(memoryview(data).cast("B"))
        finally:
            self._writing = False

    async def _send_all(self, view: memoryview) -> None:
        write = self._send

        def send(obj: object) -> int:
            sent = write(obj, view)
            if sent is None:
                raise WouldBlock  # the RawIOBase convention: wait until writable
            return sent

        try:
            while view:
                # ``send`` reads ``view`` when it runs: always the unsent rest
                view = view[await self._wrapper.write_with(send) :]
        except BaseException:
            ssl = sys.modules.get("ssl")
            if view and ssl is not None and isinstance(self._wrapper.get_ref(), ssl.SSLSocket):
                self._unsent = bytes(view)
            raise

    # -- ending ------------------------------------------------------------

    def close(self) -> None:
        """Close the wrapper and the object (see :meth:`Async.close`)."""
        self._wrapper.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self._wrapper.aclose()

    def __repr__(self) -> str:
        return f"<BufferedStream buffered={self.buffered} {self._wrapper!r}>"
