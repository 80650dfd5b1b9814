import asyncio
import socket
import time

from adapt import Async, on_cancel, run_sync


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


async def protocol_cleanup() -> None:
    client, server = socket.socketpair()
    async with Async(client) as c:

        async def discard_reply() -> None:  # protected: runs although cancelled
            print("discarded", await c.recv(100))

        await c.sendall(b"slow request")
        asyncio.get_running_loop().call_later(0.1, server.send, b"late reply")
        try:
            async with asyncio.timeout(0.05):
                async with on_cancel(discard_reply, timeout=1):
                    await c.recv(100)  # the reply is late: cancelled while waiting
        except TimeoutError:
            print("timed out")  # raised after the clean-up, inside the scope
        server.send(b"next reply")
        print(await c.recv(100))  # the connection is in step: no stale reply
    server.close()


async def main() -> None:
    await readiness_loses_nothing()
    await a_thread_call_finishes()
    await protocol_cleanup()


asyncio.run(main())

# Output:
# timed out
# b'late'
# timed out after ['inserted']
# carried on
# discarded b'late reply'
# timed out
# b'next reply'
