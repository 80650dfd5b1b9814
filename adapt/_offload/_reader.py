"""``reader()`` / ``writer()``: async streams over blocking file objects.

Theory of operation
-------------------
Regular files never report "would block" (epoll refuses them), stdin may be
a terminal, a pipe or a file, and compressed files do CPU work on every
read: none of them can be adapted by readiness.  The usual answer -- one
worker-thread hand-off per ``read()`` -- costs a thread wake-up and a loop
wake-up per call (aiofiles reads a cached file at a few percent of the
speed of plain ``f.read``).

Instead each stream has a *pump*: a pool job that runs the blocking calls
back to back, in a worker thread, and a bounded buffer between it and the
loop.

* **Reader**: the pump reads ahead ``chunk_size`` at a time until
  ``buffer_size`` is buffered, then ends (no thread is held while the buffer
  is full); a read that drains the buffer below half starts it again.
  ``read()`` takes from the buffer without any hand-off: a chunk of exactly
  the requested size is returned as is, without a copy.
* **Wake-ups are batched**: a task waiting for data is woken when the pump
  stops (buffer full, end of file, error) -- one loop wake-up per buffer.
  Sources that may block indefinitely (pipes, terminals, sockets: a
  ``fileno()`` that is not a regular file) are read with ``read1()`` /
  ``readline()`` instead, and a waiting task is woken as soon as what it
  asked for has arrived, so interactive input is not held back.
* **Cancellation loses nothing**: the pump fills the buffer, not a task, so
  data read for a read that was cancelled stays for the next one.
* **Writer**: ``write()`` appends to the buffer and returns; the pump writes
  behind.  ``write()`` waits only while the buffer is full (and then
  consumes nothing if cancelled).  ``flush()`` waits until everything
  written before it reached the file and ``file.flush()`` ran.  A failed
  write is raised by the next ``write()`` / ``flush()`` / ``aclose()``.

Caveats: the reader's file position runs ahead of what was returned, so do
not ``seek()``/``tell()``/read the file directly while the reader is in use;
a read that is blocked in the pump (stdin, no input) cannot be interrupted:
``aclose()`` of a reader that does not own its file abandons it, and the
thread stays blocked until input or end of file arrives.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections import deque
from collections.abc import Callable
from threading import Lock
from typing import Any, AnyStr, Generic, Protocol, overload

from .._backends import Backend, Waiter, current_backend
from .._errors import ClosedResourceError
from .._resource import AsyncResource
from ._pool import POOL, Sink, current_sink
from ._threads import offload

__all__ = [
    "DEFAULT_BUFFER",
    "Reader",
    "Stream",
    "check_bool",
    "check_file",
    "check_size",
    "is_text",
    "reader",
]

DEFAULT_CHUNK = 64 * 1024
DEFAULT_BUFFER = 1024 * 1024


class _BinaryReadable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _TextReadable(Protocol):
    def read(self, size: int, /) -> str: ...


def is_text(file: object) -> bool:
    if isinstance(file, io.TextIOBase):
        return True
    if isinstance(file, io.RawIOBase | io.BufferedIOBase):
        return False
    mode = getattr(file, "mode", None)
    if isinstance(mode, str):
        return "b" not in mode
    return False


def _may_block(file: Any) -> bool:
    """Whether reads may wait indefinitely (pipe, tty, socket...)."""
    try:
        fd: int = file.fileno()
        return not stat.S_ISREG(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        return False  # in-memory or wrapper objects without a fd


def check_file(file: object, need: str, what: str) -> None:
    if not callable(getattr(file, need, None)):
        raise TypeError(
            f"{what}() needs a file-like object with {need}(), not {type(file).__name__}"
        )
    if getattr(file, "closed", False) is True:
        raise ValueError(f"{what}() got a closed file")
    check = getattr(file, "readable" if need == "read" else "writable", None)
    if callable(check) and not check():
        raise ValueError(f"{what}() got a file not open for {need.rstrip('e')}ing")


def check_size(value: object, name: str) -> None:
    """A positive int option."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


def check_bool(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")


_ALL = sys.maxsize  # "until end of file"


class Stream:
    """What readers and writers share: the file, the lock, a waiting task."""

    __slots__ = ("_closed", "_error", "_file", "_lock", "_owns", "_pumping", "_sink", "_waiter")

    def __init__(self, file: Any, close: bool) -> None:
        self._file = file
        self._lock = Lock()
        self._waiter: Waiter | None = None
        self._sink: Sink | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._owns = close
        self._pumping = False

    def _detach_locked(self) -> Callable[[], None] | None:
        """Detach the waiting task (lock held); call the result after unlocking."""
        waiter, sink = self._waiter, self._sink
        if waiter is None or sink is None:
            return None
        self._waiter = None
        return lambda: sink.push(waiter.wake)

    def _register_locked(self, backend: Backend) -> Waiter:
        if self._waiter is not None:
            raise RuntimeError("another task is already waiting on this stream")
        waiter = self._waiter = backend.waiter()
        self._sink = current_sink(backend)
        return waiter

    async def _park(self, waiter: Waiter) -> None:
        def abort() -> bool:
            with self._lock:
                if self._waiter is waiter:
                    self._waiter = None
            return True

        await waiter.wait(abort)

    def start_failed(self, exc: BaseException) -> None:
        """No thread could be started for the pump: the stream fails with ``exc``."""
        with self._lock:
            self._pumping = False
            if self._error is None:
                self._error = exc
            wake = self._detach_locked()
        if wake is not None:
            wake()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("the stream is closed")

    def get_ref(self) -> Any:
        """The wrapped file (do not use it directly while the stream is open)."""
        return self._file

    async def _close_file(self) -> None:
        if self._owns:
            await offload(self._file.close, (), {}, None, False)
        else:
            await current_backend().checkpoint()


class Reader(Stream, AsyncResource, Generic[AnyStr]):
    """Async reads from a blocking file, with a bounded read-ahead buffer.

    Made by :func:`reader`.  ``read(n)`` returns ``n`` units (fewer only at
    end of file), like ``file.read(n)``; ``read1(n)`` returns what is there.
    Reads that find their data buffered return without a hand-off or a
    checkpoint.  One task at a time may wait on a reader.
    """

    __slots__ = (
        "_chunk",
        "_chunks",
        "_empty",
        "_eof",
        "_high",
        "_interactive",
        "_need",
        "_need_nl",
        "_nl",
        "_off",
        "_op",
        "_size",
    )

    def __init__(
        self, file: Any, text: bool, chunk_size: int, buffer_size: int, close: bool
    ) -> None:
        super().__init__(file, close)
        self._interactive = _may_block(file)
        if self._interactive:
            op = file.readline if text else getattr(file, "read1", file.read)
        else:
            op = file.read
        self._op: Callable[[int], AnyStr] = op
        self._empty: AnyStr = "" if text else b""  # type: ignore[assignment]
        self._nl: AnyStr = "\n" if text else b"\n"  # type: ignore[assignment]
        self._chunk = chunk_size
        self._high = buffer_size
        self._chunks: deque[AnyStr] = deque()
        self._off = 0  # consumed part of _chunks[0]
        self._size = 0  # buffered and not consumed
        self._eof = False
        self._need = 0  # the waiting task needs this many units...
        self._need_nl = False  # ...or a newline

    # -- the pump (worker thread) -----------------------------------------

    def _start_locked(self) -> bool:
        if self._pumping or self._eof or self._error is not None or self._closed:
            return False
        self._pumping = True
        return True

    def _pump(self) -> None:
        op, chunk, nl, lock = self._op, self._chunk, self._nl, self._lock
        interactive = self._interactive
        while True:
            try:
                data = op(chunk)
            except BaseException as exc:
                data = None
                error: BaseException | None = exc
            else:
                error = None
            with lock:
                if error is not None:
                    self._error = error
                elif self._closed:
                    pass  # read for nobody: the reader was closed meanwhile
                elif data:
                    self._chunks.append(data)
                    self._size += len(data)
                else:
                    self._eof = True
                if self._need_nl and data and nl in data:
                    self._need = 0
                satisfied = self._size >= self._need
                stop = (
                    self._eof
                    or self._closed
                    or error is not None
                    or (self._size >= self._high and satisfied)
                )
                if stop:
                    self._pumping = False
                wake = self._detach_locked() if stop or (interactive and satisfied) else None
                closing = stop and self._closed and self._owns
            if closing:
                self._close_in_pump()
            if wake is not None:
                wake()
            if stop:
                return

    def _close_in_pump(self) -> None:
        try:
            self._file.close()
        except BaseException as exc:
            with self._lock:
                self._error = exc

    # -- the task side ----------------------------------------------------

    def _take_locked(self, n: int) -> AnyStr:
        """Remove and return ``n`` buffered units (lock held, n <= _size)."""
        chunks = self._chunks
        if not n:
            return self._empty
        first = chunks[0]
        if not self._off and len(first) == n:
            chunks.popleft()
            self._size -= n
            return first
        parts: list[AnyStr] = []
        left = n
        while left:
            first = chunks[0]
            off = self._off
            avail = len(first) - off
            if avail <= left:
                parts.append(first[off:] if off else first)
                chunks.popleft()
                self._off = 0
                left -= avail
            else:
                parts.append(first[off : off + left])
                self._off = off + left
                left = 0
        self._size -= n
        if len(parts) == 1:
            return parts[0]
        empty: Any = self._empty  # str.join or bytes.join, by AnyStr
        return empty.join(parts)  # type: ignore[no-any-return]

    def _settled_locked(self) -> bool:
        return self._eof or self._error is not None

    def _finish_locked(self, n: int) -> tuple[AnyStr, bool]:
        """Take ``n`` units; raise a pump error once the buffer is empty."""
        if self._error is not None and not self._size:
            raise self._error
        data = self._take_locked(n)
        return data, self._size < self._high // 2 and self._start_locked()

    async def _fill(self, need: int, need_nl: bool) -> None:
        """Wait until the pump has what we need (or stopped for good)."""
        backend = current_backend()
        with self._lock:
            if self._size >= need or self._settled_locked():
                return
            self._need, self._need_nl = need, need_nl
            waiter = self._register_locked(backend)
            start = self._start_locked()
        if start:
            POOL.submit(self._pump)
        try:
            await self._park(waiter)
        except BaseException:
            with self._lock:  # nobody needs it now: read ahead only to buffer_size
                self._need, self._need_nl = 0, False
            raise
        self._check_open()

    async def read(self, n: int = -1) -> AnyStr:
        """Read ``n`` units (everything with -1); fewer only at end of file.

        ::

            data = f.read(65536)                                        # sync
            data = await r.read(65536)                                  # async
        """
        _check_count(n, "read")
        self._check_open()
        need = _ALL if n < 0 else n
        data, start = self._empty, False
        while True:
            with self._lock:
                ready = self._size >= need or self._settled_locked()
                if ready:
                    data, start = self._finish_locked(min(need, self._size))
            if ready:
                if start:
                    POOL.submit(self._pump)
                return data
            await self._fill(need, False)

    async def read1(self, n: int = -1) -> AnyStr:
        """Return what is buffered (at most ``n`` units), waiting only while
        nothing is; empty at end of file.  Like ``BufferedReader.read1``."""
        _check_count(n, "read1")
        self._check_open()
        data, start = self._empty, False
        while True:
            with self._lock:
                ready = self._size > 0 or self._settled_locked()
                if ready:
                    data, start = self._finish_locked(min(_ALL if n < 0 else n, self._size))
            if ready:
                if start:
                    POOL.submit(self._pump)
                return data
            await self._fill(1, False)

    async def readline(self, limit: int = -1) -> AnyStr:
        """Read one line, newline included (at most ``limit`` units); empty at
        end of file.

        ::

            line = f.readline()                                         # sync
            line = await r.readline()                                   # async
        """
        _check_count(limit, "readline")
        self._check_open()
        checked = 0  # buffered units known to hold no newline
        data, start = self._empty, False
        while True:
            with self._lock:
                if checked > self._size:
                    checked = 0
                end = self._find_nl_locked(checked)
                if end < 0:
                    checked = self._size
                    if 0 <= limit <= self._size or self._settled_locked():
                        end = self._size if limit < 0 else min(limit, self._size)
                elif 0 <= limit < end:
                    end = limit
                if end >= 0:
                    data, start = self._finish_locked(end)
            if end >= 0:
                if start:
                    POOL.submit(self._pump)
                return data
            await self._fill(_ALL if limit < 0 else limit, True)

    def _find_nl_locked(self, start: int) -> int:
        """Units up to and including the first newline at or after ``start``."""
        pos = 0
        off = self._off
        for chunk in self._chunks:
            length = len(chunk) - off
            if pos + length > start:
                i = chunk.find(self._nl, off + max(0, start - pos))
                if i >= 0:
                    return pos + i - off + 1
            pos += length
            off = 0
        return -1

    def __aiter__(self) -> Reader[AnyStr]:
        return self

    async def __anext__(self) -> AnyStr:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def aclose(self) -> None:
        """Stop reading ahead, drop the buffer, and close the file if the
        reader owns it.  Idempotent.

        A read in progress in the pump (stdin without input) cannot be
        interrupted: the file is closed when it returns.  A reader that does
        not own its file (``close=False``) abandons such a read.
        """
        backend = current_backend()
        waiter = wake = None
        with self._lock:
            already, pumping = self._closed, self._pumping
            if not already:
                self._closed = True
                self._chunks.clear()
                self._size = 0
                wake = self._detach_locked()  # a reader waiting: ClosedResourceError
                if pumping and self._owns:
                    waiter = self._register_locked(backend)
        if wake is not None:
            wake()
        if already:
            await backend.checkpoint()
        elif waiter is not None:
            await self._park(waiter)  # the pump closes the file when it stops
            with self._lock:
                error, self._error = self._error, None
            if error is not None and not isinstance(error, OSError | ValueError):
                raise error
        else:
            await self._close_file()


def _check_count(n: object, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what}() takes an int, not {type(n).__name__}")


@overload
def reader(
    file: _TextReadable, *, chunk_size: int = ..., buffer_size: int = ..., close: bool = ...
) -> Reader[str]: ...
@overload
def reader(
    file: _BinaryReadable, *, chunk_size: int = ..., buffer_size: int = ..., close: bool = ...
) -> Reader[bytes]: ...
def reader(
    file: Any,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    buffer_size: int = DEFAULT_BUFFER,
    close: bool = True,
) -> Reader[Any]:
    """An async reader over a blocking file-like object (regular or
    compressed files, stdin, pipes), reading ahead in a worker thread.

    ::

        with open("big.bin", "rb") as f: chunk = f.read(65536)          # sync
        async with reader(open("big.bin", "rb")) as r:
            chunk = await r.read(65536)                                 # async

    ``chunk_size``: units per read of the file (reads of that size are
    returned without a copy); ``buffer_size``: how far to read ahead.
    ``close``: whether ``aclose()`` closes the file (``close=False`` for
    ``sys.stdin.buffer``).  A text file gives ``str``.
    """
    check_file(file, "read", "reader")
    check_size(chunk_size, "chunk_size")
    check_size(buffer_size, "buffer_size")
    if buffer_size < chunk_size:
        raise ValueError("buffer_size must be at least chunk_size")
    check_bool(close, "close")
    return Reader(file, is_text(file), chunk_size, buffer_size, close)
