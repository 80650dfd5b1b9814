"""@asyncify on functions, methods, classes and objects, on all three loops."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import sqlite3
import threading
import time
from typing import Any

import anyio
import pytest

from adapt import AsyncClass, AsyncObject, CapacityLimiter, ClosedResourceError, asyncify


# start: asyncify-function
@asyncify
def checksum(data: bytes, algo: str = "sha256") -> tuple[str, str]:
    """Hex digest of data."""
    return hashlib.new(algo, data).hexdigest(), threading.current_thread().name


# end: asyncify-function


# start: asyncify-methods
class Store:
    def __init__(self) -> None:
        self.items: list[int] = []

    @asyncify
    def add(self, x: int) -> int:
        self.items.append(x)
        return len(self.items)

    @asyncify
    @classmethod
    def make(cls, n: int) -> tuple[type, int]:
        return cls, n

    @classmethod
    @asyncify
    def make2(cls, n: int) -> tuple[type, int]:
        return cls, n

    @asyncify
    @staticmethod
    def double(x: int) -> int:
        return 2 * x

    @staticmethod
    @asyncify
    def triple(x: int) -> int:
        return 3 * x


# end: asyncify-methods


async def test_function(backend: str) -> None:
    digest, thread = await checksum(b"abc")
    assert digest == hashlib.sha256(b"abc").hexdigest()
    assert thread.startswith("adapt-worker-")
    assert (await checksum(b"abc", algo="md5"))[0] == hashlib.md5(b"abc").hexdigest()
    assert checksum.__name__ == "checksum"
    assert checksum.__doc__ == "Hex digest of data."
    assert (
        str(inspect.signature(checksum))
        == "(data: 'bytes', algo: 'str' = 'sha256') -> 'tuple[str, str]'"
    )


def test_marked_as_coroutine_functions() -> None:
    store = Store()
    for fn in (
        checksum,
        store.add,
        Store.add,
        Store.make,
        store.make,
        Store.make2,
        Store.double,
        store.double,
        Store.triple,
        asyncify(len),
    ):
        assert inspect.iscoroutinefunction(fn), fn
        assert asyncio.iscoroutinefunction(fn), fn
    coro = checksum(b"")
    assert inspect.iscoroutine(coro)
    coro.close()


async def test_methods_classmethods_staticmethods(backend: str) -> None:
    store = Store()
    assert await store.add(5) == 1
    assert await Store.add(store, 6) == 2
    assert store.items == [5, 6]
    assert await Store.make(1) == (Store, 1)
    assert await store.make(2) == (Store, 2)
    assert await Store.make2(3) == (Store, 3)
    assert await Store.double(4) == 8
    assert await store.double(5) == 10
    assert await Store.triple(2) == 6


async def test_options_form_and_limiter(backend: str) -> None:
    limiter = CapacityLimiter(2)
    lock = threading.Lock()
    running = peak = 0

    @asyncify(limiter=limiter)
    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(work)
    assert peak == 2


async def test_exceptions_propagate(backend: str) -> None:
    @asyncify
    def fail(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 3"):
        await fail(3)


def test_bad_input() -> None:
    async def already() -> None:
        pass

    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="already async"):
        asyncify(already)
    with pytest.raises(TypeError, match=r"iterate\(\)"):
        asyncify(gen)
    with pytest.raises(TypeError, match="pin=True applies to classes"):
        asyncify(len, pin=True)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not int"):
        asyncify(5)
    with pytest.raises(TypeError, match="limiter must be"):
        asyncify(len, limiter=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="already"):
        asyncify(asyncify(len))


async def test_object_facade(backend: str) -> None:
    h = asyncify(hashlib.sha256())
    assert isinstance(h, AsyncObject)
    assert not isinstance(h, type(hashlib.sha256()))
    assert inspect.iscoroutinefunction(h.update)
    await h.update(b"hello ")
    await h.update(b"world")
    assert await h.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
    assert h.update.__name__ == "update"
    with pytest.raises(AttributeError, match=r"not a method.*run_with"):
        h.name  # noqa: B018
    assert await h.run_with(lambda o: o.name) == "sha256"
    with pytest.raises(AttributeError, match="private names"):
        h._secret  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        h.nope  # noqa: B018
    assert "hexdigest" in dir(h)
    assert h.get_ref().hexdigest() == hashlib.sha256(b"hello world").hexdigest()


async def test_pinned_class_constructs_and_runs_in_one_thread(backend: str) -> None:
    # start: pinned-sqlite
    Connection = asyncify(sqlite3.Connection, pin=True)
    # sqlite3 refuses use from any thread but the one that created it
    db = await Connection(":memory:")
    await db.execute("create table t (x integer)")
    await db.executemany("insert into t values (?)", [(i,) for i in range(100)])
    await db.commit()
    assert await db.run_with(lambda c: c.execute("select sum(x) from t").fetchone()) == (4950,)
    # end: pinned-sqlite
    assert isinstance(Connection, AsyncClass)
    assert db.pinned
    idents = {await db.run_with(lambda c: threading.get_ident()) for _ in range(5)}
    assert len(idents) == 1
    assert threading.get_ident() not in idents
    with pytest.raises(sqlite3.ProgrammingError):
        db.get_ref().execute("select 1")  # from the loop thread: refused
    await db.aclose()
    with pytest.raises(ClosedResourceError):
        await db.execute("select 1")
    await db.aclose()  # idempotent


async def test_pinned_calls_run_in_order(backend: str) -> None:
    log: list[int] = []
    facade = AsyncObject(log, pin=True)
    async with facade, anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(facade.append, i)
            await anyio.sleep(0)
    assert log == list(range(50))


async def test_pinned_cancel_of_a_queued_call_never_runs(backend: str) -> None:
    release = threading.Event()
    calls: list[str] = []

    class Device:
        def block(self) -> None:
            release.wait(5)

        def record(self, what: str) -> None:
            calls.append(what)

    dev = asyncify(Device(), pin=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(dev.block)
        await anyio.sleep(0.05)
        with anyio.move_on_after(0.05) as scope:
            await dev.record("queued")
        assert scope.cancelled_caught
        release.set()
    await dev.record("after")
    assert calls == ["after"]
    await dev.aclose()


async def test_callable_object_is_faceted_as_an_object(backend: str) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    db = asyncify(conn)  # sqlite3.Connection instances are callable
    assert isinstance(db, AsyncObject)
    cursor = await db.execute("select 40 + 2")
    assert await asyncify(cursor).fetchone() == (42,)
    await db.aclose()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("select 1")  # closed by aclose()


async def test_nested_call_from_the_pinned_thread_runs_inline(backend: str) -> None:
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def bump(self) -> int:
            self.n += 1
            return self.n

    counter = AsyncObject(Counter(), pin=True)

    def nested(obj: Counter) -> int:
        # a nested loop in the pinned thread calls the facade again: it must
        # run right here, not queue behind the call that is running
        return asyncio.run(counter.bump())

    assert await counter.run_with(nested) == 1
    assert await counter.bump() == 2
    await counter.aclose()


async def test_cancelled_construction_does_not_leak_the_thread(backend: str) -> None:
    class Slow:
        def __init__(self) -> None:
            time.sleep(0.1)

    Factory = asyncify(Slow, pin=True)
    with anyio.move_on_after(0.02):
        await Factory()
        await anyio.sleep(1)
    # the facade is dropped: its thread ends when it is collected


def test_facade_bad_input() -> None:
    with pytest.raises(TypeError, match="facade already"):
        AsyncObject(AsyncObject([]))
    with pytest.raises(TypeError, match="pin must be a bool"):
        AsyncObject([], pin="yes")  # type: ignore[arg-type]
