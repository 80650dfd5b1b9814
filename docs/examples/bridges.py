import asyncio
import gc
import queue
import threading
import time
from collections.abc import Callable

from adapt import Callback, CallbackDropped, Overflow, Portal, channel, deferred


def fetch(key: str, on_done: Callable[[str], object]) -> None:
    """A callback-style library call: the answer comes later, from another thread."""
    threading.Timer(0.01, on_done, args=[f"value of {key}"]).start()


async def lazy_request() -> None:
    requests = 0

    def start(done: Callback[str]) -> None:
        nonlocal requests
        requests += 1
        fetch("k", on_done=done)

    pending = deferred(start)  # nothing requested yet
    print(await pending, await pending, "- requests:", requests)


async def latest_values_win() -> None:
    send, stream = channel[int](maxsize=3, overflow=Overflow.DROP_OLDEST)
    producer = threading.Thread(target=lambda: [send(i) for i in range(10)])
    producer.start()
    await asyncio.to_thread(producer.join)
    send.close()
    print([i async for i in stream], "- dropped:", send.dropped)


async def pull_one_at_a_time() -> None:
    source = iter(range(5))

    def refill() -> None:  # called in the consuming task when the buffer is empty
        item = next(source, None)
        if item is None:
            send.close()
        else:
            send(item)

    send, stream = channel[int](on_empty=refill)
    print([i async for i in stream])


async def pull_a_page_per_request() -> None:
    pages = [list(range(k * 10, k * 10 + 10)) for k in range(3)]
    requests: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def request_page() -> None:  # runs in the consuming task: must not block
        requests.put(True)

    def worker() -> None:
        for page in pages:
            requests.get()
            time.sleep(0.005)  # a slow fetch
            for item in page:
                send(item)
        requests.get()
        send.close()

    send, stream = channel[int](maxsize=100, on_empty=request_page)
    thread = threading.Thread(target=worker)
    thread.start()
    items = [i async for i in stream]
    thread.join()
    print(len(items), "items, last", items[-1])


class Subscription:
    """A library object that holds the callback, and may vanish without closing it."""

    def __init__(self, on_item: Callable[[str], object]) -> None:
        self.on_item = on_item


async def a_dropped_sender() -> None:
    send, stream = channel[str]()
    subscription = Subscription(on_item=send)
    del send  # from now on only the library object holds the sender
    subscription.on_item("a")
    subscription.on_item("b")
    del subscription  # gone without closing the stream
    gc.collect()
    got = []
    try:
        async for item in stream:
            got.append(item)
    except CallbackDropped:
        print(got, "then CallbackDropped")


async def double_later(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


async def portal_from_a_thread() -> None:
    portal = Portal()  # a handle on the running loop, usable from any thread

    def worker() -> int:
        return portal.call(double_later, 21)  # blocks this thread, runs in the loop

    print(await asyncio.to_thread(worker))

    # async code behind a sync callback API: handler(request, respond)
    def handler(request: int, respond: Callable[[int], object]) -> None:
        portal.start(double_later, request, then=respond, on_error=print)

    answers: queue.SimpleQueue[int] = queue.SimpleQueue()
    threading.Thread(target=handler, args=(50, answers.put)).start()
    print(await asyncio.to_thread(answers.get))


async def main() -> None:
    await lazy_request()
    await latest_values_win()
    await pull_one_at_a_time()
    await pull_a_page_per_request()
    await a_dropped_sender()
    await portal_from_a_thread()


asyncio.run(main())

# Output:
# value of k value of k - requests: 1
# [7, 8, 9] - dropped: 7
# [0, 1, 2, 3, 4]
# 30 items, last 29
# ['a', 'b'] then CallbackDropped
# 42
# 100
