import asyncio
import socket

from kv import KVClient, start_server

from adapt import Async, run_sync


class AsyncKV:
    """The kv client, awaitable: adapt waits where KVClient would block."""

    def __init__(self, client: KVClient) -> None:
        self._client = client
        self._sock = Async(client.sock)  # sets O_NONBLOCK: recv now raises instead of blocking
        self._lock = asyncio.Lock()  # one request at a time per connection

    async def request(self, *words: str) -> str:
        async with self._lock:
            await self._sock.sendall(self._client.encode_request(*words))
            return await self._sock.read_with(lambda _: self._client.read_reply())

    async def get(self, key: str) -> str:
        return await self.request("GET", key)

    async def set(self, key: str, value: str) -> str:
        return await self.request("SET", key, value)

    async def aclose(self) -> None:
        await self._sock.aclose()


async def connect(address: tuple[str, int]) -> AsyncKV:
    # create_connection resolves the name with a blocking call: a thread's job
    sock = await run_sync(socket.create_connection, address)
    return AsyncKV(KVClient(sock))


async def main() -> None:
    address = await run_sync(start_server)
    kv = await connect(address)
    print(await kv.set("greeting", "hello"))
    print(await kv.get("greeting"))
    # Ten connections, a hundred requests, one thread.
    clients = [await connect(address) for _ in range(10)]
    replies = await asyncio.gather(*(c.get("greeting") for c in clients for _ in range(10)))
    print(len(replies), set(replies))
    for c in [kv, *clients]:
        await c.aclose()


asyncio.run(main())

# Output:
# OK
# hello
# 100 {'hello'}
