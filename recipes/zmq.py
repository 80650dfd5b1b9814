"""ZeroMQ sockets (pyzmq) from async code, many tasks per socket, without a thread.

Requires: pyzmq 25 (``pip install pyzmq``).

Platforms: Linux (it uses ``select.epoll`` and ``os.eventfd``).

Adapts: ``zmq.Socket``'s ``send`` / ``send_multipart`` / ``recv`` /
``recv_multipart`` with ``zmq.NOBLOCK``, whose would-block signal is
``zmq.Again``.  ``zmq.FD`` is not the socket's readiness: it is
edge-triggered (readable when libzmq has commands to process; reading
``zmq.EVENTS`` processes them and clears it) and always writable.  So after
every attempt the recipe reads ``zmq.EVENTS``: if the direction it wants is
ready it tries again at once, and if another task waits for a direction that
is now ready it wakes that task -- otherwise a send would consume the signal
a parked receive needed, and the message would sit in the socket while the
receiver sleeps.  Tasks wait on a small epoll set holding ``zmq.FD`` and an
eventfd (the wake-up), in the readable direction for sends too, so a send at
the high-water mark parks until the peer catches up instead of spinning on
an always-writable fd.

Caveats: ``zmq.FD`` belongs to libzmq: the recipe never changes its mode.
The epoll set and the eventfd are two fds per socket, closed by
:meth:`Socket.close`.  ``zmq.Poller`` and ``zmq.proxy`` block: not adapted.
Where a message is many megabytes, a send copies it (``copy=False`` is
passed through to pyzmq).

Example::

    import asyncio
    import zmq
    from adapt.recipes.zmq import Socket

    async def main():
        ctx = zmq.Context()
        server = Socket(ctx.socket(zmq.REP))
        port = server.sock.bind_to_random_port("tcp://127.0.0.1")
        client = Socket(ctx.socket(zmq.REQ))
        client.sock.connect(f"tcp://127.0.0.1:{port}")
        await client.send(b"ping")
        print(await server.recv())
        await server.send(b"pong")
        print(await client.recv())
        client.close()
        server.close()
        ctx.term()

    asyncio.run(main())
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import zmq

from adapt import Async, WouldBlock

__all__ = ["LIBRARY", "SUMMARY", "Socket"]

LIBRARY = "pyzmq"
SUMMARY = "ZeroMQ sockets (pyzmq) from async code, many tasks per socket, without a thread."

R = TypeVar("R")
_RECV, _SEND = 0, 1
_FLAG = (zmq.POLLIN, zmq.POLLOUT)


class Socket:
    """A ``zmq.Socket`` (``sock``) whose sends and receives are awaitable::

    sock.send(b"x"); reply = sock.recv()                      # sync
    s = Socket(sock); await s.send(b"x"); reply = await s.recv()
    """

    def __init__(self, sock: zmq.Socket[Any]) -> None:
        self.sock = sock
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._set = select.epoll()
        self._set.register(cast(int, sock.getsockopt(zmq.FD)), select.EPOLLIN)
        self._set.register(self._wake, select.EPOLLIN)
        # the set is readable while zmq.FD or the eventfd is
        self._async = Async(self._set.fileno(), nonblocking=False)
        self._parked = [0, 0]  # tasks waiting to receive, to send

    async def send(self, data: Any, flags: int = 0, copy: bool = True) -> None:
        """``sock.send(data)``, waiting while the socket is at its high-water mark."""
        await self._io(_SEND, lambda: self.sock.send(data, flags | zmq.NOBLOCK, copy=copy))

    async def send_multipart(self, parts: Sequence[Any], flags: int = 0) -> None:
        """``sock.send_multipart(parts)``."""
        await self._io(_SEND, lambda: self.sock.send_multipart(parts, flags | zmq.NOBLOCK))

    async def recv(self, flags: int = 0) -> bytes:
        """``sock.recv()``."""
        return await self._io(_RECV, lambda: self.sock.recv(flags | zmq.NOBLOCK))

    async def recv_multipart(self, flags: int = 0) -> list[bytes]:
        """``sock.recv_multipart()``."""
        return await self._io(_RECV, lambda: self.sock.recv_multipart(flags | zmq.NOBLOCK))

    def _events(self) -> int:
        # reading EVENTS also processes libzmq's pending commands
        return cast(int, self.sock.getsockopt(zmq.EVENTS))

    def _kick(self) -> None:
        """Wake the parked tasks if a direction they wait for is ready."""
        events = self._events()
        if any(events & _FLAG[d] and self._parked[d] for d in (_RECV, _SEND)):
            os.eventfd_write(self._wake, 1)

    async def _io(self, direction: int, call: Callable[[], R]) -> R:
        parked = False

        def op(_fd: int) -> R:
            nonlocal parked
            if parked:  # woken: the wake-up, if it was one, is spent
                parked = False
                self._parked[direction] -= 1
                try:
                    os.eventfd_read(self._wake)
                except BlockingIOError:
                    pass
            while True:
                try:
                    result = call()
                except zmq.Again:
                    if self._events() & _FLAG[direction]:
                        continue  # became ready meanwhile: no wait
                    if self._parked[0] or self._parked[1]:
                        self._kick()
                    parked = True
                    self._parked[direction] += 1
                    raise WouldBlock from None
                if self._parked[0] or self._parked[1]:
                    self._kick()  # this call may have taken a parked task's signal
                return result

        try:
            return await self._async.read_with(op)
        finally:
            if parked:  # cancelled (or closed) while waiting
                self._parked[direction] -= 1

    def close(self, linger: int | None = None) -> None:
        """Deregister, then close the socket and the recipe's two fds."""
        self._async.into_inner()
        self._set.close()
        os.close(self._wake)
        self.sock.close(linger)
