import asyncio
import hashlib
import os
import sqlite3
import tempfile
import time

from adapt import CapacityLimiter, asyncify, iterate, reader, run_sync, writer

db_slots = CapacityLimiter(3)


def query(i: int) -> int:
    time.sleep(0.01)  # a blocking client call
    return i * i


async def bounded_calls() -> list[int]:
    # twenty calls, at most three in threads at once
    return await asyncio.gather(*(run_sync(query, i, limiter=db_slots) for i in range(20)))


@asyncify
def checksum(data: bytes, algo: str = "sha256") -> str:
    """Hex digest of data, computed in a worker thread."""
    return hashlib.new(algo, data).hexdigest()


class Store:
    def __init__(self) -> None:
        self.items: list[int] = []

    @asyncify
    def add(self, x: int) -> int:
        self.items.append(x)
        return len(self.items)

    @asyncify
    @classmethod
    def make(cls) -> "Store":
        return cls()

    @asyncify
    @staticmethod
    def double(x: int) -> int:
        return 2 * x


async def pinned_sqlite() -> tuple[int]:
    Connection = asyncify(sqlite3.Connection, pin=True)
    # sqlite3 refuses use from any thread but the one that created it
    db = await Connection(":memory:")
    await db.execute("create table t (x integer)")
    await db.executemany("insert into t values (?)", [(i,) for i in range(100)])
    await db.commit()
    total: tuple[int] = await db.run_with(lambda c: c.execute("select sum(x) from t").fetchone())
    await db.aclose()
    return total


async def write_file(path: str, data: bytes) -> None:
    async with writer(open(path, "wb"), buffer_size=100_000) as w:
        for i in range(0, len(data), 7919):
            await w.write(data[i : i + 7919])  # returns at once: written behind
        await w.flush()  # everything so far is in the file now


async def read_file(path: str) -> int:
    chunks = 0
    async with reader(open(path, "rb")) as r:
        while chunk := await r.read(65536):  # read ahead by a thread
            chunks += 1
            del chunk
    return chunks


async def sum_rows(db: sqlite3.Connection) -> int:
    cursor = db.execute("select x from t order by x")
    return sum([x async for (x,) in iterate(cursor)])  # next() runs in a worker, in batches


async def main() -> None:
    print(await bounded_calls())
    print(await checksum(b"abc"))
    store = await Store.make()
    print(await store.add(1), await store.add(2), await Store.double(21))
    print(await pinned_sqlite())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.bin")
        await write_file(path, os.urandom(1_000_000))
        print(await read_file(path), "chunks")
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("create table t (x integer)")
    db.executemany("insert into t values (?)", [(i,) for i in range(5000)])
    print(await sum_rows(db))
    db.close()


asyncio.run(main())

# Output:
# [0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225, 256, 289, 324, 361]
# ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
# 1 2 42
# (4950,)
# 16 chunks
# 12497500
