import asyncio
import socket
import time

from adapt import Async, run_sync


async def readiness_loses_nothing() -> None:
    a, b = socket.socketpair()
    async with Async(a) as x:
        try:
            async with asyncio.timeout(0.05):
                await x.recv(100)  # nothing arrives in time: cancelled while waiting
        except TimeoutError:
            print("timed out")
        b.send(b"late")
        print(await x.recv(100))  # the bytes are all there: the wait consumed nothing
    b.close()


async def a_thread_call_finishes() -> None:
    done = []

    def insert_row() -> str:
        time.sleep(0.1)  # a blocking call that cannot be interrupted
        done.append("inserted")
        return "inserted"

    try:
        async with asyncio.timeout(0.02):
            await run_sync(insert_row)  # waits for the call, then raises in the scope
    except TimeoutError:
        print("timed out after", done)  # the row was inserted before the scope ended
    await asyncio.sleep(0.01)  # nothing strikes later, outside the scope
    print("carried on")


async def main() -> None:
    await readiness_loses_nothing()
    await a_thread_call_finishes()


asyncio.run(main())

# Output:
# timed out
# b'late'
# timed out after ['inserted']
# carried on
