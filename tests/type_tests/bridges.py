"""Type tests: oneshot, deferred, channel and Portal."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from adapt import Callback, Overflow, Portal, Receiver, Result, Sender, channel, deferred, oneshot


async def one_shot() -> None:
    callback, result = oneshot[int]()
    assert_type(callback, Callback[int])
    assert_type(result, Result[int])
    assert_type(await result, int)
    callback(1)
    callback.fail(ValueError("x"))
    as_callable: Callable[[int], None] = callback
    as_callable(2)
    callback("one")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

    done, finished = oneshot[None]()
    done()  # a Callback[None] takes no argument
    assert_type(await finished, None)


async def pull() -> None:
    def start(done: Callback[str]) -> None:
        done("fetched")

    assert_type(await deferred(start), str)
    assert_type(await deferred[bytes](lambda done: done(b"")), bytes)


async def stream() -> None:
    send, items = channel[bytes](maxsize=10, overflow=Overflow.DROP_OLDEST)
    assert_type(send, Sender[bytes])
    assert_type(items, Receiver[bytes])
    send(b"x")
    send(b"y", timeout=1.0)
    send("text")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    async for item in items:
        assert_type(item, bytes)
    channel[int](overflow="drop_newest")
    channel[int](overflow="sometimes")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


async def paced() -> None:
    send, _ = channel[str](maxsize=4, overflow="pace")
    assert_type(send.room, int | None)
    assert_type(await send.wait_room(), None)
    assert_type(channel[str](overflow=Overflow.PACE), tuple[Sender[str], Receiver[str]])
    send.room = 3  # type: ignore[misc]  # pyright: ignore[reportAttributeAccessIssue]


async def twice(x: int) -> int:
    return 2 * x


def portal_use(portal: Portal) -> None:
    assert_type(portal.call(twice, 21), int)
    assert_type(portal.call_sync(len, "abc"), int)
    portal.call(twice, "21")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    cancel = portal.start(twice, 1, then=print, on_error=print)
    assert_type(cancel, Callable[[], None])
