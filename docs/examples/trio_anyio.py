import asyncio
import socket

import anyio
import trio

from adapt import Async, run_sync


async def echo_once() -> bytes:
    """The same adapt code, whatever loop runs it."""
    a, b = socket.socketpair()
    async with Async(a) as x, Async(b) as y:
        await y.sendall(b"hi")
        data = await x.recv(2)
    return data + await run_sync(bytes.upper, b" from a thread")


print("asyncio:", asyncio.run(echo_once()))
print("trio:   ", trio.run(echo_once))
print("anyio:  ", anyio.run(echo_once, backend="trio"))

# Output:
# asyncio: b'hi FROM A THREAD'
# trio:    b'hi FROM A THREAD'
# anyio:   b'hi FROM A THREAD'
