import asyncio
import sqlite3
import time

from adapt import CapacityLimiter, asyncify, run_sync


def slow_lookup(key: str) -> str:
    time.sleep(0.01)  # a blocking client call
    return key.upper()


async def with_to_thread() -> list[str]:
    return await asyncio.gather(*(asyncio.to_thread(slow_lookup, k) for k in "abc"))


lookups = CapacityLimiter(2)  # at most two lookups at once


async def with_adapt() -> list[str]:
    return await asyncio.gather(*(run_sync(slow_lookup, k, limiter=lookups) for k in "abc"))


@asyncify
def count_rows(db_path: str) -> int:  # the decorator: an async function, run in a thread
    with sqlite3.connect(db_path) as db:
        db.execute("create table if not exists t (x)")
        return int(db.execute("select count(*) from t").fetchone()[0])


async def main() -> None:
    print(await with_to_thread())
    print(await with_adapt())
    print(await count_rows(":memory:"))


asyncio.run(main())

# Output:
# ['A', 'B', 'C']
# ['A', 'B', 'C']
# 0
