"""The redis recipe against a real redis-server, on every loop."""

from __future__ import annotations

import contextlib
import socket
import time

import anyio
import pytest
import redis
from adapt.recipes import redis as recipe
from adapt.recipes.redis import Client

from adapt import Async, WouldBlock

from ._example import example_main


async def test_example(backend: str, redis_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    with redis.Redis(port=redis_port) as plain:
        plain.delete("n")
    await example_main(recipe, port=redis_port)()
    assert capsys.readouterr().out == "hello\n[1, 2]\n"


async def test_response_callbacks_and_errors(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port, decode_responses=True) as r:
        await r.execute("DEL", "h", "s")
        assert await r.execute("HSET", "h", "a", "1", "b", "2") == 2
        assert await r.execute("HGETALL", "h") == {"a": "1", "b": "2"}  # a callback
        assert await r.execute("EXISTS", "h") == 1
        assert await r.execute("SET", "s", "x") is True  # SET's callback: OK -> True
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await r.execute("LPUSH", "h", "x")
        assert await r.execute("GET", "s") == "x"  # still in step after the error


async def test_pipeline_keeps_errors_in_place(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as r:
        await r.execute("DEL", "p")
        replies = await r.pipeline(("SET", "p", "1"), ("LPUSH", "p", "x"), ("INCR", "p"))
        assert replies[0] is True
        assert isinstance(replies[1], redis.ResponseError)
        assert replies[2] == 2
        big = [("SET", f"k{i}", b"v" * 100) for i in range(2000)]
        assert await r.pipeline(*big) == [True] * 2000


async def test_an_empty_pipeline_returns_at_once(backend: str, redis_port: int) -> None:
    # nothing sent, no reply due: no wait for one
    async with Client(port=redis_port) as r:
        with anyio.fail_after(2):
            assert await r.pipeline() == []
        assert await r.execute("PING") is True


async def test_big_reply(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as r:
        value = bytes(range(256)) * 4096  # 1 MiB: many recv()s for one reply
        await r.execute("SET", "big", value)
        assert await r.execute("GET", "big") == value


async def test_plain_nonblocking_wrapper_breaks_redis_py(backend: str, redis_port: int) -> None:
    # What the recipe avoids: Async() puts the socket in non-blocking mode,
    # and redis-py then fails a reply that is not there yet instead of waiting.
    client = redis.Redis(port=redis_port)
    conn = client.connection_pool.get_connection()
    wrapper = Async(conn._sock)  # the default: O_NONBLOCK
    try:
        conn.send_command("BLPOP", "nothing-here", "1")
        with pytest.raises(redis.ConnectionError, match="reading from socket"):
            await wrapper.read_with(lambda _: conn.read_response())
    finally:
        wrapper.into_inner()
        conn.disconnect()
        client.connection_pool.release(conn)
        client.close()


async def test_plain_cancelled_blpop_answers_the_next_command(
    backend: str, redis_port: int
) -> None:
    # What the recipe avoids: a cancelled wait consumed nothing, but the
    # BLPOP is still pending on the server; its reply (the pushed item)
    # arrives as the answer to the next command.
    client = redis.Redis(port=redis_port)
    conn = client.connection_pool.get_connection()
    wrapper = Async(conn._sock, nonblocking=False)

    def reply(_: object) -> object:
        if not conn.can_read(timeout=0):
            raise WouldBlock
        return client.parse_response(conn, "X")

    try:
        client.delete("queue")
        conn.send_command("BLPOP", "queue", "5")
        with anyio.move_on_after(0.2):
            await wrapper.read_with(reply)
        client.rpush("queue", "item")
        conn.send_command("GET", "missing")
        assert await wrapper.read_with(reply) == [b"queue", b"item"]  # not None
    finally:
        wrapper.into_inner()
        conn.disconnect()
        client.connection_pool.release(conn)
        client.close()


async def test_cancelled_blpop_keeps_the_connection_in_step(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as r, Client(port=redis_port) as other:
        await r.execute("DEL", "queue")
        with anyio.move_on_after(0.2):
            await r.execute("BLPOP", "queue", 5)
        await anyio.sleep(0.05)  # the server sees the dropped connection
        await other.execute("RPUSH", "queue", "item")
        assert await r.execute("GET", "missing") is None  # the next command's own reply
        assert await r.execute("LPOP", "queue") == b"item"  # not lost


async def test_blocking_commands_run_concurrently(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as a, Client(port=redis_port) as b:
        await a.execute("DEL", "q")
        got: list[object] = []

        async def pop() -> None:
            got.append(await a.execute("BLPOP", "q", 5))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pop)
                await anyio.sleep(0.1)
                await b.execute("RPUSH", "q", "x")
        assert got == [(b"q", b"x")]  # BLPOP's callback makes a tuple


async def test_pubsub_drains_the_parser_before_waiting(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as r:
        sub = await r.subscribe("news", "sport")
        try:
            n = 300
            # published in one pipeline: many messages arrive in one recv(),
            # and the parser holds the rest -- no readiness event will come
            await r.pipeline(*[("PUBLISH", "news" if i % 2 else "sport", str(i)) for i in range(n)])
            got: list[bytes] = []
            with anyio.fail_after(5):
                async for message in sub:
                    got.append(message["data"])
                    if len(got) == n:
                        break
            assert got == [str(i).encode() for i in range(n)]
        finally:
            sub.close()


#: a script that keeps the server busy for 0.3 s, then answers 1
_BUSY = """
local start = redis.call('TIME')
local function now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end
local t0 = start[1] + start[2] / 1e6
while now() - t0 < 0.3 do end
return 1
"""


async def test_cancelled_command_is_drained_not_dropped(backend: str, redis_port: int) -> None:
    async with Client(port=redis_port) as r:
        before = await r.execute("CLIENT", "ID")
        with anyio.move_on_after(0.1) as scope:
            await r.execute("EVAL", _BUSY, 0)
        assert scope.cancelled_caught
        # the late reply was read in the clean-up: same connection, in step
        assert await r.execute("CLIENT", "ID") == before
        assert await r.execute("ECHO", "next") == b"next"


async def test_cancelled_pipeline_past_its_deadline_drops_the_connection(
    backend: str, redis_port: int
) -> None:
    async with Client(port=redis_port, cancel_timeout=0.05) as r:
        before = await r.execute("CLIENT", "ID")
        with anyio.move_on_after(0.1):
            await r.pipeline(("EVAL", _BUSY, 0), ("ECHO", "late"))
        assert await r.execute("ECHO", "next") == b"next"  # not "late" nor 1
        assert await r.execute("CLIENT", "ID") != before  # a new connection


async def test_pubsub_goes_on_after_redis_py_reconnects(backend: str, redis_port: int) -> None:
    # The server drops the pub/sub connection (a restart, a failover, a slow
    # consumer past client-output-buffer-limit); redis-py's get_message()
    # reconnects on a new socket and subscribes again.  That socket need not
    # get the old fd number: here a lower number is free by then.
    spare = socket.socket()
    async with Client(port=redis_port) as r:
        sub = await r.subscribe("news")
        try:
            await r.execute("PUBLISH", "news", "before")
            with anyio.fail_after(5):
                assert (await sub.__anext__())["data"] == b"before"
            spare.close()
            await r.execute("CLIENT", "KILL", "TYPE", "pubsub")

            async def publish() -> None:
                while True:  # until the new subscription hears one
                    await r.execute("PUBLISH", "news", "after")
                    await anyio.sleep(0.05)

            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(publish)
                    while True:
                        try:
                            message = await sub.__anext__()
                        except redis.ConnectionError:
                            continue  # the loss itself may be reported once
                        assert message["data"] == b"after"
                        tg.cancel_scope.cancel()
                        break
        finally:
            sub.close()


async def test_cancelled_blpop_named_in_bytes_loses_no_item(backend: str, redis_port: int) -> None:
    # redis-py takes a command's name as bytes too: b"BLPOP" is as blocking
    # as "BLPOP".  Drained instead of dropped, its late reply -- an item
    # pushed meanwhile -- is read and thrown away.
    async with Client(port=redis_port) as r, Client(port=redis_port) as other:
        await r.execute("DEL", "bq")

        async def push() -> None:
            await anyio.sleep(0.4)  # after the cancellation, within the drain
            await other.execute("RPUSH", "bq", "item")

        async with anyio.create_task_group() as tg:
            tg.start_soon(push)
            with anyio.move_on_after(0.2):
                await r.execute(b"BLPOP", "bq", 5)
        await anyio.sleep(0.05)
        assert await other.execute("LPOP", "bq") == b"item"  # not lost


async def test_a_pubsub_message_that_arrives_in_pieces_is_not_lost(
    backend: str, redis_port: int
) -> None:
    # An 8 MiB message does not fit the socket buffers: the server sends the
    # rest as the subscriber reads, and a busy server (a script) pauses it
    # half-way.  The subscriber must read the message to its end, not time
    # out half-way (get_message(timeout=0)), reconnect and lose it.
    async with Client(port=redis_port) as r, Client(port=redis_port) as busy:
        sub = await r.subscribe("big")
        try:
            value = bytes(range(256)) * (32 << 10)
            got: list[bytes] = []

            async def consume() -> None:
                async for message in sub:
                    got.append(message["data"])
                    if len(got) == 4:
                        return

            with anyio.move_on_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume)
                    for _ in range(2):
                        await r.execute("PUBLISH", "big", value)
                        await busy.execute("EVAL", _BUSY, 0)
                        await r.execute("PUBLISH", "big", "small")
            assert [len(data) for data in got] == [len(value), 5] * 2
            assert got[0] == got[2] == value
        finally:
            sub.close()


async def test_a_command_waiting_for_a_silent_server_can_be_cancelled(
    backend: str, silent_port: int
) -> None:
    # The server accepts the connection and never answers the handshake:
    # redis-py waits socket_timeout (5 s by default, then retries: about a
    # minute in all) in the worker thread that connects.  A timeout around
    # the command must end it.  (Here 4 s and no retry, to be quick.)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    start = time.monotonic()
    with contextlib.suppress(redis.RedisError), anyio.move_on_after(0.5):
        async with Client(port=silent_port, socket_timeout=4, retry=Retry(NoBackoff(), 0)) as r:
            await r.execute("PING")
    took = time.monotonic() - start
    assert took < 3, f"the cancelled command took {took:.1f} s: until redis-py gave up"
