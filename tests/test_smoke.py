import socket

import anyio

from adapt import Async


async def test_recv_send_roundtrip(backend: str) -> None:
    a, b = socket.socketpair()
    async with Async(a) as x, Async(b) as y:
        async with anyio.create_task_group() as tg:
            got = []

            async def reader() -> None:
                got.append(await x.recv(10))

            tg.start_soon(reader)
            await anyio.sleep(0.01)
            await y.sendall(b"hello")
        assert got == [b"hello"]
