import socket

import anyio

from adapt import Async


async def recv_with_anyio(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    while True:
        try:
            return sock.recv(1024)
        except BlockingIOError:
            await anyio.wait_readable(sock)  # one waiting task per socket at a time


async def recv_with_adapt(sock: socket.socket) -> bytes:
    return await Async(sock).recv(1024)


async def main() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.send(b"one")
        print(await recv_with_anyio(a))
        b.send(b"two")
        print(await recv_with_adapt(a))


for backend in ("asyncio", "trio"):
    anyio.run(main, backend=backend)

# Output:
# b'one'
# b'two'
# b'one'
# b'two'
