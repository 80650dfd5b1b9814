"""Type tests: BufferedStream and its errors."""

from __future__ import annotations

import socket
from typing import Any, assert_type

from adapt import Async, BufferedStream, IncompleteReadError, LimitOverrunError


async def reads(sock: socket.socket) -> None:
    stream = BufferedStream(Async(sock))
    assert_type(await stream.readline(), bytes)
    assert_type(await stream.readuntil(b"\r\n"), bytes)
    assert_type(await stream.readexactly(4), bytes)
    assert_type(await stream.read(), bytes)
    assert_type(await stream.read(10), bytes)
    assert_type(stream.at_eof(), bool)
    assert_type(stream.buffered, int)
    assert_type(stream.wrapper, Async[Any])
    async for line in stream:
        assert_type(line, bytes)
    await stream.write_all(b"x")
    await stream.write_all(memoryview(b"x"))
    await stream.write_all("text")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await stream.readexactly("4")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    async with BufferedStream(sock) as same:
        assert_type(same, BufferedStream)
    BufferedStream(sock, read=lambda s, n: s.recv(n) or None, write=lambda s, d: s.send(d))
    BufferedStream(sock, sticky_eof=False)
    BufferedStream(sock, read=lambda s, n: 0)  # type: ignore[arg-type,return-value]  # pyright: ignore[reportArgumentType]


def errors(exc: IncompleteReadError, over: LimitOverrunError) -> None:
    assert_type(exc.partial, bytes)
    assert_type(exc.expected, int | None)
    assert_type(over.consumed, int)
