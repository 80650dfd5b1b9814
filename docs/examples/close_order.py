import asyncio
import socket

from adapt import Async, ClosedResourceError


async def wait_for_data(name: str, wrapped: Async[socket.socket]) -> None:
    try:
        await wrapped.read_with(lambda s: s.recv(100))
    except ClosedResourceError:
        print(name, "woken by close")


async def main() -> None:
    a, b = socket.socketpair()
    wrapped = Async(a)
    async with asyncio.TaskGroup() as tg:
        for name in ("first", "second"):  # two waiters on one fd: both allowed
            tg.create_task(wait_for_data(name, wrapped))
        await asyncio.sleep(0.01)
        await wrapped.aclose()  # mark closed, wake the waiters, deregister, close
    print("socket closed:", a.fileno() == -1)
    b.close()


asyncio.run(main())

# Output:
# first woken by close
# second woken by close
# socket closed: True
