"""Redis commands, pipelines and pub/sub with redis-py, without a thread per call.

Requires: redis 5.3 (``pip install redis``).

Platforms: Linux (any platform adapt runs on).

Adapts: a ``redis.Redis`` client's connection (``redis.connection.Connection``)
and ``PubSub``.  redis-py has no would-block signal of its own: its sockets
block, and its parser reads ahead into a buffer.  The recipe's op asks
``conn.can_read(timeout=0)`` (buffered bytes, or a readable socket) and
raises :class:`adapt.WouldBlock` when nothing is there; otherwise it runs
redis-py's own ``parse_response``, so replies get the client's response
callbacks (``decode_responses``, ``HGETALL`` as a dict...).  Pub/sub
messages are drained from the parser's buffer before each wait, and a
subscription follows redis-py when ``get_message()`` reconnects it on a new
socket.  A message that has begun to arrive is read to its end, blocking
(for at most 10 s), as replies are (see Caveats).  A late
reply would answer the next command, so a command whose task is cancelled
puts the connection back in step under :class:`adapt.on_cancel` before the
cancellation goes on: it reads the replies still due (for at most
``cancel_timeout`` seconds, default 1), or -- for a blocking command such as
``BLPOP``, whose reply may never come -- drops the connection, so the
server gives the wait up and leaves the item for others.  A command that
fails in transit drops its connection too; the next command reconnects.

Mode: ``nonblocking=False``, although redis-py's ``conn._sock`` is a
``socket.socket`` whose mode adapt would change by default (see Caveats).

Caveats: the socket stays in blocking mode, because redis-py's connection
breaks in non-blocking mode ("Error while reading from socket"), so the
recipe wraps it with ``nonblocking=False``: a reply that has begun to
arrive is read to its end, and a command is sent, with blocking calls --
fine for replies and commands that fit the socket buffers, a stall of the
loop for ones of many megabytes.  Connecting (DNS, TCP, the ``HELLO``
handshake) and the first ``SUBSCRIBE`` run in a worker thread
(:func:`adapt.run_sync`); a cancelled connect returns at once, and a
connection made after it goes back to the pool.  One :class:`Client` is one
connection: use one per concurrent task (commands on one connection run one
at a time).

Example::

    import asyncio
    from adapt.recipes.redis import Client

    async def main():
        # `port` is a redis-server on 127.0.0.1 (the test starts one)
        async with Client(port=port, decode_responses=True) as r:
            await r.execute("SET", "greeting", "hello")
            print(await r.execute("GET", "greeting"))
            print(await r.pipeline(("INCR", "n"), ("INCR", "n")))

    asyncio.run(main())
"""

from __future__ import annotations

import functools
import threading
from types import TracebackType
from typing import Any

import redis

from adapt import Async, WouldBlock, on_cancel, run_sync

__all__ = ["LIBRARY", "SUMMARY", "Client", "Subscription"]

LIBRARY = "redis"
SUMMARY = "Redis commands, pipelines and pub/sub with redis-py, without a thread per call."

#: commands the server may hold without an answer (a cancelled one is not drained)
_BLOCKING = frozenset(
    [
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "XREAD",
        "XREADGROUP",
        "WAIT",
        "WAITAOF",
    ]
)


def _name(command: tuple[Any, ...]) -> str:
    """A command's name as redis-py's response callbacks know it (it takes
    ``b"GET"`` as well as ``"GET"``)."""
    name = command[0]
    return name.decode() if isinstance(name, bytes) else str(name)


#: seconds a pub/sub message that has begun to arrive may take to arrive whole
_REST_OF_MESSAGE = 10.0


async def _get_connection(pool: Any) -> Any:
    """``pool.get_connection()`` in a worker thread; a cancellation returns at
    once, and a connection made after it goes back to the pool."""
    lock = threading.Lock()
    made: list[Any] = []
    gave_up: list[bool] = []

    def get() -> Any:
        conn = pool.get_connection()
        with lock:
            if gave_up:
                pool.release(conn)
            else:
                made.append(conn)
        return conn

    try:
        return await run_sync(get, abandon_on_cancel=True)
    except BaseException:
        with lock:
            gave_up.append(True)
            for conn in made:
                pool.release(conn)
        raise


class Client:
    """One redis connection, used from one task at a time::

    r = redis.Redis(port=port); r.get("k")         # sync
    r = Client(port=port); await r.execute("GET", "k")
    """

    def __init__(self, *, cancel_timeout: float = 1.0, **kwargs: Any) -> None:
        # redis-py is partly typed: its objects are Any here
        self.redis: Any = redis.Redis(**kwargs)
        self.cancel_timeout = cancel_timeout
        self._conn: Any = None  # a redis.connection.Connection
        self._wrapper: Async[Any] | None = None

    async def _connection(self) -> tuple[Any, Async[Any]]:
        if self._conn is None or self._wrapper is None:
            conn: Any = await _get_connection(self.redis.connection_pool)
            # blocking mode kept: redis-py reads whole replies with recv()
            self._wrapper = Async(conn._sock, nonblocking=False)
            self._conn = conn
        return self._conn, self._wrapper

    def _drop(self) -> None:
        if self._wrapper is not None:
            self._wrapper.into_inner()
        if self._conn is not None:
            self._conn.disconnect()
            self.redis.connection_pool.release(self._conn)
        self._conn = self._wrapper = None

    def _reply(self, conn: Any, name: str, options: dict[str, Any], _sock: object) -> Any:
        if not conn.can_read(timeout=0):  # nothing buffered, nothing arrived
            raise WouldBlock
        return self.redis.parse_response(conn, name, **options)

    async def execute(self, *args: Any, **options: Any) -> Any:
        """Send one command and return its reply, as redis-py parses it."""
        return (await self._run([args], options))[0]

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send the commands in one write; their replies in order.  A reply
        that is an error is returned in its place, as redis-py's pipelines do
        with ``raise_on_error=False``."""
        return await self._run(list(commands), {}, errors_in_place=True)

    async def _run(
        self,
        commands: list[tuple[Any, ...]],
        options: dict[str, Any],
        errors_in_place: bool = False,
    ) -> list[Any]:
        conn, wrapper = await self._connection()
        replies: list[Any] = []
        in_step: list[bool] = []

        async def resync() -> None:
            # cancelled with replies due: read them (the connection stays in
            # step), or drop the connection for a blocking command
            await self._resync(conn, wrapper, commands[len(replies) :])
            in_step.append(True)

        try:
            conn.send_packed_command(conn.pack_commands(commands))
            async with on_cancel(resync, timeout=self.cancel_timeout):
                # the first reply cannot be here yet, and nothing is buffered
                # (the connection is in step): wait before the first try,
                # which would cost can_read()'s three system calls
                if commands:
                    await wrapper.readable()
                for command in commands:
                    reply = functools.partial(self._reply, conn, _name(command), options)
                    try:
                        replies.append(await wrapper.read_with(reply))
                    except redis.ResponseError as exc:
                        if not errors_in_place:
                            raise
                        replies.append(exc)
        except redis.ResponseError:
            raise  # a whole error reply was read: the connection is in step
        except BaseException:
            if not in_step:
                self._drop()  # broken, or not back in step in time
            raise
        return replies

    async def _resync(self, conn: Any, wrapper: Async[Any], due: list[tuple[Any, ...]]) -> None:
        """Read the replies ``due``; raise (so the connection is dropped)
        when one of them is a blocking command's."""
        for command in due:
            name = _name(command).upper()
            if name in _BLOCKING:
                # its reply may never come, or carry an item nobody will
                # get: dropping the connection makes the server give up
                raise ConnectionAbortedError(f"{name} cancelled")
            try:
                await wrapper.read_with(functools.partial(self._reply, conn, name, {}))
            except redis.ResponseError:
                pass  # a whole error reply: read

    async def subscribe(self, *channels: str) -> Subscription:
        """``SUBSCRIBE`` on a connection of its own; returns the message iterator."""
        pubsub: Any = self.redis.pubsub(ignore_subscribe_messages=True)
        await run_sync(pubsub.subscribe, *channels)
        return Subscription(pubsub)

    def close(self) -> None:
        """Close the connection and the client's pool."""
        self._drop()
        self.redis.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _PubSubSocket:
    """The pub/sub connection's socket as it is now."""

    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    def fileno(self) -> int:
        conn = self.pubsub.connection
        sock = None if conn is None else conn._sock
        return -1 if sock is None else int(sock.fileno())


class Subscription:
    """Pub/sub messages as an async iterator of redis-py's message dicts::

    msg = pubsub.get_message(timeout=None)          # sync
    async for msg in await r.subscribe("news"): ...
    """

    def __init__(self, pubsub: Any) -> None:
        self.pubsub: Any = pubsub  # a redis.client.PubSub, subscribed
        # get_message() reconnects on a new socket after a lost connection:
        # adapt follows an object whose fileno() changes
        self._wrapper: Async[_PubSubSocket] = Async(_PubSubSocket(pubsub), nonblocking=False)

    def _message(self, _sock: Any) -> dict[str, Any]:
        pubsub = self.pubsub
        while True:
            conn: Any = pubsub.connection
            try:
                arrived = conn is not None and conn.can_read(timeout=0)
            except redis.ConnectionError:
                arrived = False  # lost: get_message() reconnects, subscribes again
            # redis-py applies its timeout to the whole message: with 0 it
            # would give up on one that is still arriving, reconnect and lose
            # it -- so one that has begun is read to its end, blocking
            message: dict[str, Any] | None = pubsub.get_message(
                timeout=_REST_OF_MESSAGE if arrived else 0.0
            )
            if message is not None:
                return message
            # None: nothing there, or a subscribe confirmation it swallowed
            # -- parsed ahead, more may be buffered: read until it is empty
            if not arrived:
                raise WouldBlock

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._wrapper.read_with(self._message)

    def close(self) -> None:
        """Deregister, then close the pub/sub connection."""
        self._wrapper.into_inner()
        self.pubsub.close()
