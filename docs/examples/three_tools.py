import asyncio
import hashlib
import os
import tempfile
import threading

from adapt import Async, channel, oneshot, reader, run_sync


async def readiness() -> None:
    # An fd the loop can watch: the call runs in the task, no thread.
    r, w = os.pipe()
    async with Async(r) as pipe:
        os.write(w, b"ready")
        print("readiness:", await pipe.read(5))
    os.close(w)


async def thread(path: str) -> None:
    # Blocking work with nothing to poll: a worker thread.
    with open(path, "rb") as f:
        digest = await run_sync(hashlib.file_digest, f, "sha256")
    print("thread:", digest.hexdigest()[:16])
    async with reader(open(path, "rb")) as r:  # a file, read ahead in a thread
        print("thread:", await r.readline())


async def bridge() -> None:
    # A callback API, here threading.Timer: one call -> an awaitable.
    callback, result = oneshot[str]()
    threading.Timer(0.01, callback, args=["fired"]).start()
    print("bridge:", await result)
    # Many calls -> an async iterator.
    send, stream = channel[int](maxsize=10)

    def produce() -> None:
        for i in range(3):
            send(i)
        send.close()

    threading.Thread(target=produce).start()
    print("bridge:", [i async for i in stream])


async def main() -> None:
    await readiness()
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(b"first line\nsecond line\n")
    try:
        await thread(f.name)
    finally:
        os.remove(f.name)
    await bridge()


asyncio.run(main())

# Output:
# readiness: b'ready'
# thread: c2097f55f01fc297
# thread: b'first line\n'
# bridge: fired
# bridge: [0, 1, 2]
