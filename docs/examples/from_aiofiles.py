import asyncio
import os
import tempfile

import aiofiles

from adapt import reader, writer


async def with_aiofiles(path: str) -> int:
    async with aiofiles.open(path, "w") as f:
        for i in range(1000):
            await f.write(f"line {i}\n")
    count = 0
    async with aiofiles.open(path) as f:
        async for _line in f:
            count += 1
    return count


async def with_adapt(path: str) -> int:
    async with writer(open(path, "w")) as w:
        for i in range(1000):
            await w.write(f"line {i}\n")  # queued; written behind in a thread
    count = 0
    async with reader(open(path)) as r:  # read ahead in a thread
        async for _line in r:
            count += 1
    return count


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lines.txt")
        print(await with_aiofiles(path))
        print(await with_adapt(path))


asyncio.run(main())

# Output:
# 1000
# 1000
