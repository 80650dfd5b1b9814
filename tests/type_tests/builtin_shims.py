"""Type tests: the built-in shims (checked by mypy --strict and pyright strict).

Every negative case carries the exact error code each checker must report:
mypy fails on an unused ``type: ignore`` (warn_unused_ignores), pyright on an
unused ``pyright: ignore`` (reportUnnecessaryTypeIgnoreComment), and pyright
does not honour ``type: ignore`` here, so each checker is held to its own.
"""

from __future__ import annotations

import io
import multiprocessing.connection
import socket
import ssl
from typing import Any, assert_type

from adapt import (
    Async,
    AsyncConnection,
    AsyncFD,
    AsyncFileIO,
    AsyncSocket,
    AsyncSSLSocket,
)


class Widget:
    def fileno(self) -> int:
        return 0


async def positive(
    sock: socket.socket,
    tls: ssl.SSLSocket,
    f: io.FileIO,
    conn: multiprocessing.connection.Connection[int, str],
    w: Widget,
) -> None:
    a = Async(sock)
    assert_type(a, AsyncSocket)
    assert_type(await a.recv(10), bytes)
    assert_type(await Async(sock).recv(10), bytes)
    assert_type(await a.recv(10, socket.MSG_PEEK), bytes)
    assert_type(await a.recv_into(bytearray(10), nbytes=4), int)
    assert_type(await a.recvfrom(10), tuple[bytes, Any])
    assert_type(await a.send(b"x"), int)
    assert_type(await a.sendto(b"x", ("127.0.0.1", 9)), int)
    assert_type(await a.sendall(memoryview(b"x")), None)
    conn_sock, _ = await a.accept()
    assert_type(conn_sock, AsyncSocket)
    assert_type(await a.connect(("127.0.0.1", 9)), None)
    assert_type(a.get_ref(), socket.socket)
    assert_type(AsyncSocket(sock), AsyncSocket)

    t = Async(tls)
    assert_type(t, AsyncSSLSocket)
    assert_type(await t.recv(), bytes)
    assert_type(await t.do_handshake(), None)
    assert_type(await t.unwrap(), socket.socket)
    assert_type(t.get_ref(), ssl.SSLSocket)
    assert_type(t.get_ref().pending(), int)

    r = Async(f)
    assert_type(r, AsyncFileIO)
    assert_type(await r.read(), bytes)  # None (would block) is never returned
    assert_type(await r.readall(), bytes)
    assert_type(await r.write(b"x"), int)

    c = Async(conn)
    assert_type(c, AsyncConnection[int, str])
    assert_type(await c.recv(), str)
    assert_type(await c.send(42), None)
    assert_type(await c.recv_bytes(), bytes)

    d = Async(3)
    assert_type(d, AsyncFD)
    assert_type(await d.read(10), bytes)
    assert_type(await d.write(b"x"), int)

    g = Async(w)
    assert_type(g, Async[Widget])
    assert_type(await g.read_with(lambda widget: widget.fileno()), int)
    assert_type(await g.read_with(lambda widget: widget.fileno(), wait="writable"), int)
    assert_type(await g.write_with(lambda widget: widget.fileno(), wait="readable"), int)
    assert_type(g.wake(), None)


async def negative(
    sock: socket.socket,
    tls: ssl.SSLSocket,
    conn: multiprocessing.connection.Connection[int, str],
    w: Widget,
) -> None:
    await Async(w).read_with(lambda widget: widget.fileno(), wait="read")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    a = Async(sock)
    await a.read(10)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    await a.recieve(10)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    await a.recv("10")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await a.recv(bufsize=10)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await Async(tls).accept()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    await Async(3).recv(10)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    await Async(conn).send("not an int")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await Async(w).recv(10)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    AsyncSocket(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    data: str = await a.recv(10)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    del data
