import asyncio
import sqlite3
import threading

from asgiref.sync import async_to_sync, sync_to_async

from adapt import Portal, asyncify


async def with_asgiref() -> None:
    # thread_sensitive=True: every call runs in one shared thread
    connect = sync_to_async(sqlite3.connect, thread_sensitive=True)
    db = await connect(":memory:")
    await sync_to_async(db.execute, thread_sensitive=True)("create table t (x)")
    rows = await sync_to_async(db.execute, thread_sensitive=True)("select count(*) from t")
    print(await sync_to_async(rows.fetchone, thread_sensitive=True)())


async def with_adapt() -> None:
    # pin=True: this object's own thread; the class is asyncified, so the
    # connection is made in that thread too (sqlite3 checks)
    Connection = asyncify(sqlite3.Connection, pin=True)
    db = await Connection(":memory:")
    await db.execute("create table t (x)")
    print(await db.run_with(lambda c: c.execute("select count(*) from t").fetchone()))
    await db.aclose()


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def worker_asgiref(out: list[int]) -> None:
    out.append(async_to_sync(double)(21))  # async code, called from a sync thread


def worker_adapt(portal: Portal, out: list[int]) -> None:
    out.append(portal.call(double, 21))  # runs in the application's loop


async def main() -> None:
    await with_asgiref()
    await with_adapt()
    out: list[int] = []
    await asyncio.to_thread(worker_asgiref, out)
    portal = Portal()
    thread = threading.Thread(target=worker_adapt, args=(portal, out))
    thread.start()
    await asyncio.to_thread(thread.join)
    print(out)


asyncio.run(main())

# Output:
# (0,)
# (0,)
# [42, 42]
