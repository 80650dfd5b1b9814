"""iterate(): async iteration over sync iterators, on all three loops."""

from __future__ import annotations

import contextvars
import csv
import io
import sqlite3
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from adapt import ThreadIterator, iterate

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_all_items_in_order(backend: str) -> None:
    got = [x async for x in iterate(range(100_000))]
    assert got == list(range(100_000))


async def test_small_buffer(backend: str) -> None:
    got = [x async for x in iterate(iter("abcdefghij" * 50), buffer_size=1)]
    assert "".join(got) == "abcdefghij" * 50


async def test_runs_in_a_worker_with_the_callers_context(backend: str) -> None:
    VAR.set("caller")

    def gen() -> Iterator[tuple[str, str]]:
        for _ in range(3):
            yield threading.current_thread().name, VAR.get()

    got = [x async for x in iterate(gen())]
    assert [var for _, var in got] == ["caller"] * 3
    assert all(name.startswith("adapt-worker-") for name, _ in got)


async def test_csv_reader_and_sqlite_cursor(backend: str) -> None:
    text = "".join(f"{i},name{i}\n" for i in range(1000))
    rows = [row async for row in iterate(csv.reader(io.StringIO(text)))]
    assert rows == [[str(i), f"name{i}"] for i in range(1000)]

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        conn.execute("create table t (x integer)")
        conn.executemany("insert into t values (?)", [(i,) for i in range(5000)])
        # start: iterate-cursor
        cursor = conn.execute("select x from t order by x")
        assert [x async for (x,) in iterate(cursor)] == list(range(5000))
        # end: iterate-cursor
    finally:
        conn.close()


async def test_exception_after_the_items_before_it(backend: str) -> None:
    def gen() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken source")

    it = iterate(gen())
    got = [await it.__anext__(), await it.__anext__()]
    with pytest.raises(ValueError, match="broken source") as info:
        await it.__anext__()
    assert got == [1, 2]
    assert info.value.__traceback__ is not None
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


async def test_slow_source_is_not_batched_up(backend: str) -> None:
    def slow() -> Iterator[float]:
        for _ in range(3):
            time.sleep(0.1)
            yield time.monotonic()

    async for produced in iterate(slow()):
        # each item reaches us right after it was produced, not after the batch
        assert time.monotonic() - produced < 0.08


async def test_early_exit_closes_the_generator(backend: str) -> None:
    closed = threading.Event()

    def gen() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    async with iterate(gen()) as it:
        async for x in it:
            if x == 10:
                break
    assert closed.is_set()


async def test_aclose_waits_for_a_blocked_next(backend: str) -> None:
    gate = threading.Event()
    closed = threading.Event()

    def gen() -> Iterator[int]:
        try:
            yield 1
            gate.wait(5)
            yield 2
        finally:
            closed.set()

    it = iterate(gen())
    assert await it.__anext__() == 1
    with anyio.move_on_after(0.05):
        await it.__anext__()  # blocked in next(): cancelled
    with anyio.move_on_after(0.05) as scope:
        await it.aclose()  # cannot close a generator that is running
    assert scope.cancelled_caught
    gate.set()  # next() returns; the pump closes the generator then
    for _ in range(100):
        if closed.is_set():
            break
        await anyio.sleep(0.01)
    assert closed.is_set()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


async def test_cancelled_wait_loses_no_item(backend: str) -> None:
    gate = threading.Event()

    def gen() -> Iterator[int]:
        gate.wait(5)
        yield from range(5)

    it: ThreadIterator[int] = iterate(gen())
    with anyio.move_on_after(0.05) as scope:
        await it.__anext__()
    assert scope.cancelled_caught
    gate.set()
    assert [x async for x in it] == [0, 1, 2, 3, 4]


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="iterable"):
        iterate(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        iterate([], buffer_size=0)
    with pytest.raises(TypeError, match="must be an int"):
        iterate([], buffer_size=1.5)  # type: ignore[arg-type]

    async def agen() -> object:
        yield 1

    with pytest.raises(TypeError, match="async"):
        iterate(agen())  # type: ignore[arg-type]
