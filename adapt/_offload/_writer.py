"""``writer()``: async writes to a blocking file, written behind in a thread.

Theory of operation
-------------------
``write()`` appends to a bounded buffer and returns; a pump (a pool job)
takes everything buffered in one go and writes it in a worker thread, so a
burst of small writes costs one hand-off.  ``write()`` waits only while the
buffer is full, and a write cancelled while waiting has queued nothing.
``flush()`` is a request with a sequence number: the pump writes what was
queued before it, calls ``file.flush()`` and reports the number done.  A
write that fails stops the stream: the error is raised by the next
``write()`` / ``flush()`` (every time) and by ``aclose()`` if nobody saw it.
``aclose()`` flushes, then the pump closes the file when it stops, so a
cancelled ``aclose()`` still closes it, and never under a running write.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, AnyStr, Generic, Protocol, overload

from .._backends import Waiter, current_backend
from .._resource import AsyncResource
from ._pool import POOL, Sink, current_sink
from ._reader import DEFAULT_BUFFER, Stream, check_bool, check_file, check_size, is_text

__all__ = ["Writer", "writer"]


class _BinaryWritable(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class _TextWritable(Protocol):
    def write(self, data: str, /) -> Any: ...


def _write_all(file: Any, data: str | bytes) -> None:
    n = file.write(data)
    if isinstance(data, str):
        return
    if n is None:
        raise BlockingIOError("writer() needs a file in blocking mode")
    if not isinstance(n, int) or n >= len(data):
        return
    view = memoryview(data)[n:]
    while view:  # raw files may write partially
        n = file.write(view)
        if n is None:
            raise BlockingIOError("writer() needs a file in blocking mode")
        view = view[n:]


class Writer(Stream, AsyncResource, Generic[AnyStr]):
    """Async writes to a blocking file, with a bounded write-behind buffer.

    Made by :func:`writer`.  One task at a time may wait for buffer space.
    """

    __slots__ = (
        "_chunks",
        "_done",
        "_flushers",
        "_high",
        "_seen",
        "_size",
        "_space",
        "_text",
        "_want",
    )

    def __init__(self, file: Any, text: bool, buffer_size: int, close: bool) -> None:
        super().__init__(file, close)
        self._text = text
        self._high = buffer_size
        self._chunks: list[AnyStr] = []
        self._size = 0  # queued or being written
        self._want = 0  # last flush requested...
        self._done = 0  # ...and last one completed
        self._flushers: list[tuple[int, Sink, Waiter]] = []
        self._space = 0  # units the task waiting for space wants to add
        self._seen = False  # the error was raised to someone

    def _raise_locked(self) -> None:
        if self._error is not None:
            self._seen = True
            raise self._error

    def _start_locked(self) -> bool:
        if self._pumping:
            return False
        self._pumping = True
        return True

    # -- the pump (worker thread) -----------------------------------------

    def _pump(self) -> None:
        file, lock = self._file, self._lock
        while True:
            with lock:
                batch, self._chunks = self._chunks, []
                flush_to = self._want if self._want > self._done else 0
                if not batch and not flush_to:
                    self._pumping = False
                    closing = self._closed
                    if not closing:
                        return
            if not batch and not flush_to:
                break
            error: BaseException | None = None
            try:
                for data in batch:
                    _write_all(file, data)
                if flush_to:
                    file.flush()
            except BaseException as exc:
                error = exc
            with lock:
                wakes: list[Callable[[], None]] = []
                if error is None:
                    self._size -= sum(map(len, batch))
                    self._done = max(self._done, flush_to)
                else:
                    self._error = error
                    self._chunks, self._size = [], 0
                    self._done = self._want  # nothing more will be written
                if not self._closed and (self._size + self._space <= self._high or not self._size):
                    wake = self._detach_locked()  # the task waiting for space
                    if wake is not None:
                        wakes.append(wake)
                keep: list[tuple[int, Sink, Waiter]] = []
                for seq, sink, waiter in self._flushers:
                    if seq <= self._done:
                        wakes.append(functools.partial(sink.push, waiter.wake))
                    else:
                        keep.append((seq, sink, waiter))
                self._flushers = keep
            for wake in wakes:
                wake()
        # closed and drained: close the file here, never under a running write
        try:
            if self._owns:
                file.close()
        except BaseException as exc:
            with lock:
                if self._error is None:
                    self._error = exc
        with lock:
            wake = self._detach_locked()
        if wake is not None:
            wake()

    def start_failed(self, exc: BaseException) -> None:
        """No thread could be started for the pump: fail as a write would."""
        with self._lock:
            self._pumping = False
            if self._error is None:
                self._error = exc
            self._chunks, self._size = [], 0
            self._done = self._want  # nothing more will be written
            wakes: list[Callable[[], None]] = [
                functools.partial(sink.push, waiter.wake) for _, sink, waiter in self._flushers
            ]
            self._flushers = []
            wake = self._detach_locked()
        if wake is not None:
            wakes.append(wake)
        for each in wakes:
            each()

    # -- the task side ----------------------------------------------------

    async def write(self, data: AnyStr) -> None:
        """Queue ``data``; wait only while the buffer is full.

        ::

            f.write(b"line\\n")                                          # sync
            await w.write(b"line\\n")                                    # async

        The data is copied when queued.  Errors of earlier writes are raised
        here.  Cancelled while waiting for space, it has queued nothing.
        """
        if self._text:
            if not isinstance(data, str):
                raise TypeError(f"write() to a text writer takes str, not {type(data).__name__}")
        elif not isinstance(data, bytes):
            if not isinstance(data, bytearray | memoryview):
                raise TypeError(f"write() takes a bytes-like object, not {type(data).__name__}")
            copy: Any = bytes(data)
            data = copy
        self._check_open()
        n = len(data)
        backend = current_backend()
        start = False
        while True:
            with self._lock:
                self._raise_locked()
                if not n:
                    return
                if not self._size or self._size + n <= self._high:
                    self._chunks.append(data)
                    self._size += n
                    start = self._start_locked()
                    break
                self._space = n
                waiter = self._register_locked(backend)
                start = self._start_locked()
            if start:
                POOL.submit(self._pump)
            await self._park(waiter)
            self._check_open()
        if start:
            POOL.submit(self._pump)

    async def flush(self) -> None:
        """Wait until everything written so far reached the file and
        ``file.flush()`` ran.  Cancelling the wait does not unqueue data."""
        self._check_open()
        backend = current_backend()
        waiter = backend.waiter()
        with self._lock:
            self._raise_locked()
            self._want += 1
            entry = (self._want, current_sink(backend), waiter)
            self._flushers.append(entry)
            start = self._start_locked()
        if start:
            POOL.submit(self._pump)

        def abort() -> bool:
            with self._lock:
                if entry in self._flushers:
                    self._flushers.remove(entry)
            return True

        await waiter.wait(abort)
        with self._lock:
            self._raise_locked()

    async def aclose(self) -> None:
        """Flush, then close the file (if the writer owns it).  Idempotent.

        If cancelled, the file is still flushed and closed, in the background.
        """
        backend = current_backend()
        waiter = wake = None
        start = False
        with self._lock:
            if self._closed:
                already = True
            else:
                already = False
                self._closed = True
                wake = self._detach_locked()  # a writer waiting for space
                if self._error is None:
                    self._want += 1  # flush what is queued
                waiter = self._register_locked(backend)
                start = self._start_locked()
        if already:
            await backend.checkpoint()
            return
        if wake is not None:
            wake()
        if start:
            POOL.submit(self._pump)
        assert waiter is not None
        await self._park(waiter)
        with self._lock:
            if not self._seen:
                self._raise_locked()


@overload
def writer(file: _TextWritable, *, buffer_size: int = ..., close: bool = ...) -> Writer[str]: ...
@overload
def writer(
    file: _BinaryWritable, *, buffer_size: int = ..., close: bool = ...
) -> Writer[bytes]: ...
def writer(file: Any, *, buffer_size: int = DEFAULT_BUFFER, close: bool = True) -> Writer[Any]:
    """An async writer over a blocking file-like object (regular or
    compressed files, stdout, pipes), writing behind in a worker thread.

    ::

        with open("out.bin", "wb") as f: f.write(data)                  # sync
        async with writer(open("out.bin", "wb")) as w:
            await w.write(data)                                         # async

    ``buffer_size``: how much may be queued before ``write()`` waits.
    ``close``: whether ``aclose()`` closes the file (``close=False`` for
    ``sys.stdout.buffer``; it is still flushed).  A text file takes ``str``.
    """
    check_file(file, "write", "writer")
    check_size(buffer_size, "buffer_size")
    check_bool(close, "close")
    return Writer(file, is_text(file), buffer_size, close)
