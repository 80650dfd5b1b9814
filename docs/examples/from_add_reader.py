import asyncio
import socket

from adapt import Async


async def recv_with_add_reader(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while True:
        try:
            return sock.recv(1024)
        except BlockingIOError:
            pass
        ready = loop.create_future()
        loop.add_reader(sock, ready.set_result, None)  # replaces any other reader of sock
        try:
            await ready
        finally:
            loop.remove_reader(sock)


async def recv_with_adapt(sock: socket.socket) -> bytes:
    return await Async(sock).recv(1024)


async def main() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.send(b"one")
        print(await recv_with_add_reader(a))
        b.send(b"two")
        print(await recv_with_adapt(a))


asyncio.run(main())

# Output:
# b'one'
# b'two'
