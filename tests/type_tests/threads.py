"""Type tests: run_sync, asyncify, reader/writer and iterate."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any, assert_type

from adapt import (
    AsyncClass,
    AsyncObject,
    CapacityLimiter,
    Reader,
    ThreadIterator,
    Writer,
    asyncify,
    iterate,
    reader,
    run_sync,
    writer,
)


def parse(text: str, base: int = 10) -> int:
    return int(text, base)


async def calls() -> None:
    assert_type(await run_sync(parse, "12"), int)
    assert_type(await run_sync(parse, "ff", 16), int)
    await run_sync(parse, "1", "2")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await run_sync(parse, "1", limiter=CapacityLimiter(2), abandon_on_cancel=True)


async def functions() -> None:
    aparse = asyncify(parse)
    keeps_the_signature: Callable[[str, int], Coroutine[Any, Any, int]] = aparse
    assert_type(await keeps_the_signature("1", 10), int)
    assert_type(await aparse("1", base=2), int)
    await aparse(1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    limited = asyncify(limiter=CapacityLimiter(1))(parse)
    assert_type(await limited("7"), int)


async def objects() -> None:
    facade = AsyncObject(sqlite3.connect(":memory:"), pin=True)
    assert_type(facade, AsyncObject[sqlite3.Connection])
    assert_type(facade.get_ref(), sqlite3.Connection)
    assert_type(await facade.run_with(lambda c: c.total_changes), int)
    Connection = asyncify(sqlite3.Connection, pin=True)
    assert_type(Connection, AsyncClass[sqlite3.Connection])
    db = await Connection(":memory:")
    assert_type(db, AsyncObject[sqlite3.Connection])
    assert_type(asyncify(io.BytesIO()), AsyncObject[io.BytesIO])


async def streams() -> None:
    r = reader(open("f", "rb"))  # noqa: SIM115
    assert_type(r, Reader[bytes])
    assert_type(await r.read(10), bytes)
    t = reader(open("f", encoding="utf-8"))  # noqa: SIM115
    assert_type(t, Reader[str])
    assert_type(await t.readline(), str)
    w = writer(open("f", "wb"))  # noqa: SIM115
    assert_type(w, Writer[bytes])
    await w.write(b"x")
    await w.write("x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    assert_type(writer(open("f", "w")), Writer[str])  # noqa: SIM115


async def items() -> None:
    it = iterate(range(3))
    assert_type(it, ThreadIterator[int])
    async for x in it:
        assert_type(x, int)
