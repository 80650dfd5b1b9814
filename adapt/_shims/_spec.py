"""The catalog of built-in shims: one source of truth per wrapped type.

Each wrapped type is described by a stub class below: its methods carry the
*sync* signature (the same as typeshed's, which the ``TYPE_CHECKING`` block at
the bottom verifies with the type checker) and a rule saying how the shim
runs the method:

* :func:`reads` / :func:`writes` -- run ``var.method(args)`` in the awaiting
  task; while it would block, wait until readable / writable and retry.
  ``none_blocks`` maps a ``None`` result (``FileIO`` on EAGAIN) to "would
  block"; ``ready`` is a test run before the call (for objects that have no
  non-blocking mode, such as ``multiprocessing`` connections); ``call``
  replaces the default ``var.method(args)`` expression.
* :func:`custom` -- the method is written by hand in the shim's base class
  (``adapt/_shims/_base.py``); the rule only documents it.

``python -m adapt._shims._generate`` turns the catalog into ``adapt/_shims/_gen.py``
(typed methods with the sync parameters) and the listing in
``docs/shims.rst``; ``python -m adapt._shims._generate --check`` fails when either
is stale.  Nothing here runs on the hot path; the module is only imported by
the generator, the tests and the type checker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

if TYPE_CHECKING:
    import io
    import multiprocessing.connection
    import socket
    import ssl

    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["CATALOG", "MethodRule", "TypeSpec", "custom", "reads", "writes"]

_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S")
_R = TypeVar("_R")
_S_contra = TypeVar("_S_contra", contravariant=True)
_R_co = TypeVar("_R_co", covariant=True)


@dataclass(frozen=True)
class MethodRule:
    """How a shim runs one sync method."""

    #: "read" or "write": the direction waited for when the call would block
    direction: str
    #: op expression over the spec's variable; None: ``var.method(args)``
    call: str | None = None
    #: a ``None`` result means "would block" (``FileIO`` on EAGAIN)
    none_blocks: bool = False
    #: test run before the call; false means "would block"
    ready: str | None = None
    #: written by hand in the base class; this says what it does
    custom: str | None = None
    #: extra line for the docs listing
    note: str | None = None


@dataclass(frozen=True)
class TypeSpec:
    """One wrapped type and the stub class describing its shims."""

    stub: type
    #: dotted path of the wrapped type (registered lazily by that name)
    wraps: str
    #: the generated class
    name: str
    #: its hand-written base class in ``adapt._shims._base``
    base: str
    #: the name of the wrapped object in the generated ops
    var: str
    #: ``(sync line, async line)`` for the class docstring
    example: tuple[str, str]
    #: how the sync methods say "would block" (for the docs)
    signal: str
    #: type parameters of the generated class, e.g. ``("_S", "_R")``
    params: tuple[str, ...] = ()
    #: keep the fd in blocking mode unless told otherwise
    nonblocking: bool = True
    #: the methods move bytes between the caller and the kernel's buffer, with
    #: no buffer of their own (``Async._io`` may then wait before trying; see
    #: ``adapt/_core/_predict.py``, which also says which objects qualify)
    direct: bool = False

    def rules(self) -> Iterable[tuple[str, MethodRule]]:
        for name, value in vars(self.stub).items():
            rule = getattr(value, "__adapt_rule__", None)
            if isinstance(rule, MethodRule):
                yield name, rule


def _mark(rule: MethodRule) -> Callable[[_F], _F]:
    def mark(fn: _F) -> _F:
        fn.__adapt_rule__ = rule  # type: ignore[attr-defined]
        return fn

    return mark


def reads(
    call: str | None = None,
    *,
    none_blocks: bool = False,
    ready: str | None = None,
    note: str | None = None,
) -> Callable[[_F], _F]:
    """The method reads: wait until readable while it would block."""
    return _mark(MethodRule("read", call, none_blocks, ready, None, note))


def writes(
    call: str | None = None,
    *,
    none_blocks: bool = False,
    ready: str | None = None,
    note: str | None = None,
) -> Callable[[_F], _F]:
    """The method writes: wait until writable while it would block."""
    return _mark(MethodRule("write", call, none_blocks, ready, None, note))


def custom(direction: str, what: str) -> Callable[[_F], _F]:
    """The shim is written by hand in the base class; ``what`` documents it."""
    return _mark(MethodRule(direction, custom=what))


CATALOG: list[TypeSpec] = []


def _wrapped(
    wraps: str,
    name: str,
    base: str,
    var: str,
    example: tuple[str, str],
    signal: str,
    params: tuple[str, ...] = (),
    nonblocking: bool = True,
    direct: bool = False,
) -> Callable[[type[_S]], type[_S]]:
    def register(stub: type[_S]) -> type[_S]:
        spec = TypeSpec(stub, wraps, name, base, var, example, signal, params, nonblocking, direct)
        CATALOG.append(spec)
        return stub

    return register


_SSL_NOTE = "OpenSSL may ask to wait in the other direction (renegotiation)"


@_wrapped(
    "socket.socket",
    "AsyncSocket",
    "SocketBase",
    "sock",
    ("data = sock.recv(1024)", "data = await Async(sock).recv(1024)"),
    "raises ``BlockingIOError``",
    direct=True,
)
class SocketSpec(Protocol):
    """A ``socket.socket`` (TCP, UDP, Unix, raw...)."""

    @reads()
    def recv(self, bufsize: int, flags: int = 0, /) -> bytes: ...

    @reads()
    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int: ...

    @reads()
    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]: ...

    @reads()
    def recvfrom_into(
        self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Any]: ...

    @reads()
    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]: ...

    @writes()
    def send(self, data: ReadableBuffer, flags: int = 0, /) -> int: ...

    @reads()
    def recvmsg_into(
        self, buffers: Iterable[WriteableBuffer], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]: ...

    @overload
    def sendto(self, data: ReadableBuffer, address: Any, /) -> int: ...

    @overload
    def sendto(self, data: ReadableBuffer, flags: int, address: Any, /) -> int: ...

    @custom("write", "``sendto(data, address)`` or ``sendto(data, flags, address)``")
    def sendto(
        self, data: ReadableBuffer, flags_or_address: Any, address: Any = None, /
    ) -> int: ...

    @writes()
    def sendmsg(
        self,
        buffers: Iterable[ReadableBuffer],
        ancdata: Iterable[tuple[int, int, ReadableBuffer]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int: ...

    @custom("write", "sends in chunks until all of ``data`` is sent")
    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None: ...

    @custom("read", "the connection comes back wrapped (``Async(conn)``)")
    def accept(self) -> tuple[socket.socket, Any]: ...

    @custom("write", "``EINPROGRESS``, wait until writable, then check ``SO_ERROR``")
    def connect(self, address: Any, /) -> None: ...


@_wrapped(
    "ssl.SSLSocket",
    "AsyncSSLSocket",
    "SSLBase",
    "tls",
    ("data = tls.recv(1024)", "data = await Async(tls).recv(1024)"),
    "raises ``SSLWantReadError`` / ``SSLWantWriteError`` (waits in that direction)",
)
class SSLSocketSpec(Protocol):
    """An ``ssl.SSLSocket``.  Wrap it with ``do_handshake_on_connect=False``
    (the socket is non-blocking) and ``await a.do_handshake()``.  Reads return
    data OpenSSL already decrypted (``pending()``) without waiting, and
    :meth:`~adapt.Async.readable` returns at once while there is some."""

    @reads(note=_SSL_NOTE)
    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes: ...

    @reads(note=_SSL_NOTE)
    def recv_into(
        self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0
    ) -> int: ...

    @writes(note=_SSL_NOTE)
    def send(self, data: ReadableBuffer, flags: int = 0) -> int: ...

    @custom("write", "sends until all of ``data`` is sent; " + _SSL_NOTE)
    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None: ...

    @reads(note="waits in whichever direction OpenSSL asks")
    def do_handshake(self) -> None: ...

    @reads(note="sends close_notify, waits for the peer's; returns the plain socket")
    def unwrap(self) -> socket.socket: ...


@_wrapped(
    "io.FileIO",
    "AsyncFileIO",
    "FileIOBase",
    "f",
    ("data = f.read(4096)", "data = await Async(f).read(4096)"),
    "returns ``None``",
    direct=True,
)
class FileIOSpec(Protocol):
    """An unbuffered ``io.FileIO`` over a pipe, FIFO, pty or character device
    (``open(path, "rb", buffering=0)``, ``Popen(..., bufsize=0).stdout``).
    ``FileIO`` returns ``None`` when it would block; the shims wait instead."""

    @custom(
        "read",
        "a negative or ``None`` size reads until end of file, like the sync call; "
        "cancelled part-way, the bytes read so far are kept for the next read",
    )
    def read(self, size: int | None = -1, /) -> bytes: ...

    @custom("read", "reads until end of file")
    def readall(self) -> bytes: ...

    @custom("read", "bytes kept from a cancelled read to end of file come first")
    def readinto(self, buffer: WriteableBuffer, /) -> int: ...

    @writes(none_blocks=True)
    def write(self, b: ReadableBuffer, /) -> int: ...


@_wrapped(
    "multiprocessing.connection.Connection",
    "AsyncConnection",
    "ConnectionBase",
    "c",
    ("obj = conn.recv()", "obj = await Async(conn).recv()"),
    "the test before the call is false",
    params=("_S", "_R"),
    nonblocking=False,
)
class ConnectionSpec(Protocol, Generic[_S_contra, _R_co]):
    """A ``multiprocessing.connection.Connection`` (``Pipe()``, ``Client``,
    ``Listener.accept()``).  It has no non-blocking mode, so its fd stays
    blocking: a read runs once ``poll(0)`` says a message has started to
    arrive, a write once the fd is writable.  A message larger than the
    socket buffer still blocks the loop until the peer has received it."""

    @reads(ready="message_ready(c)")
    def recv(self) -> _R_co: ...

    @reads(ready="message_ready(c)")
    def recv_bytes(self, maxlength: int | None = None) -> bytes: ...

    @reads(ready="message_ready(c)")
    def recv_bytes_into(self, buf: Any, offset: int = 0) -> int: ...

    @writes(ready="room_to_send(c)")
    def send(self, obj: _S_contra) -> None: ...

    @writes(ready="room_to_send(c)")
    def send_bytes(self, buf: ReadableBuffer, offset: int = 0, size: int | None = None) -> None: ...


@_wrapped(
    "builtins.int",
    "AsyncFD",
    "FDBase",
    "fd",
    ("data = os.read(fd, 4096)", "data = await Async(fd).read(4096)"),
    "raises ``BlockingIOError``",
)
class FDSpec(Protocol):
    """A raw int fd (pipe, pty, eventfd, inotify...): ``os.read`` and
    ``os.write`` on it."""

    @reads("os.read(fd, n)")
    def read(self, n: int, /) -> bytes: ...

    @reads("os.readv(fd, [buffer])", note="fills ``buffer``, returns the count read")
    def readinto(self, buffer: WriteableBuffer, /) -> int: ...

    @writes("os.write(fd, data)", note="returns the count written")
    def write(self, data: ReadableBuffer, /) -> int: ...


if TYPE_CHECKING:
    # The stubs must agree with the real classes' (typeshed) signatures: the
    # type checkers verify that each real class satisfies its stub protocol.
    def check_conformance(
        sock: socket.socket,
        tls: ssl.SSLSocket,
        f: io.FileIO,
        conn: multiprocessing.connection.Connection[_S, _R],
    ) -> tuple[SocketSpec, SSLSocketSpec, FileIOSpec, ConnectionSpec[_S, _R]]:
        return sock, tls, f, conn
