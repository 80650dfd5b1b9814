import asyncio
import socket

from adapt import Async


async def main() -> None:
    a, b = socket.socketpair()
    async with Async(a) as x, Async(b) as y:
        await y.sendall(b"ping")  # the sync call, awaitable
        print(await x.recv(4))
        await y.write_with(lambda s: s.send(b"pong"))  # any op on the object
        print(await x.read_with(lambda s: s.recv(4)))


asyncio.run(main())

# Output:
# b'ping'
# b'pong'
