"""ZeroMQ sockets (pyzmq) from async code, many tasks per socket, without a thread.

Requires: pyzmq 25 (``pip install pyzmq``).

Platforms: Linux (any platform adapt runs on).

Adapts: ``zmq.Socket``'s ``send`` / ``send_multipart`` / ``recv`` /
``recv_multipart`` with ``zmq.NOBLOCK``, whose would-block signal is
``zmq.Again``.  ``zmq.FD`` is not the socket's readiness: it is
edge-triggered (readable when libzmq has commands to process; reading
``zmq.EVENTS`` processes them and clears it) and always writable.  So the
recipe wraps ``zmq.FD`` with ``Async`` and, after every attempt, reads
``zmq.EVENTS``: if the direction it wants is ready it tries again at once,
and if another task waits for a direction that is now ready it wakes that
task (:meth:`adapt.Async.wake`) -- otherwise a send would consume the signal
a parked receive needed, and the message would sit in the socket while the
receiver sleeps.  Sends wait for ``zmq.FD`` to be *readable*
(``write_with(op, wait="readable")``), so a send at the high-water mark
parks until the peer catches up instead of spinning on an always-writable
fd.

Mode: ``zmq.FD`` is an int fd, a kind whose mode adapt would change by
default, but it belongs to libzmq: the recipe wraps it with
``nonblocking=False``.

Caveats: the recipe opens no fd of its own.  ``zmq.Poller`` and ``zmq.proxy`` block: not
adapted.  Where a message is many megabytes, a send copies it
(``copy=False`` is passed through to pyzmq).

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

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import zmq

from adapt import Async, WouldBlock

__all__ = ["LIBRARY", "SUMMARY", "Socket"]

LIBRARY = "pyzmq"
SUMMARY = "ZeroMQ sockets (pyzmq) from async code, many tasks per socket, without a thread."

R = TypeVar("R")
_RECV, _SEND = 0, 1
# plain ints: pyzmq's constants are enum flags, and ``|`` / ``&`` on those
# run Python code in the enum module (a few us a round trip, by cProfile)
_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
_FLAG = (_POLLIN, _POLLOUT)
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)


class Socket:
    """A ``zmq.Socket`` (``sock``) whose sends and receives are awaitable::

    sock.send(b"x"); reply = sock.recv()                      # sync
    s = Socket(sock); await s.send(b"x"); reply = await s.recv()
    """

    def __init__(self, sock: zmq.Socket[Any]) -> None:
        self.sock = sock
        fd = cast(int, sock.getsockopt(zmq.FD))
        self._async = Async(fd, nonblocking=False, would_block=zmq.Again)
        self._parked = [0, 0]  # tasks waiting to receive, to send

    async def send(self, data: Any, flags: int = 0, copy: bool = True) -> None:
        """``sock.send(data)``, waiting while the socket is at its high-water mark."""
        send = self.sock.send
        await self._io(_SEND, lambda: send(data, flags | _NOBLOCK, copy=copy))

    async def send_multipart(self, parts: Sequence[Any], flags: int = 0) -> None:
        """``sock.send_multipart(parts)``."""
        await self._io(_SEND, lambda: self.sock.send_multipart(parts, flags | _NOBLOCK))

    async def recv(self, flags: int = 0) -> bytes:
        """``sock.recv()``."""
        recv = self.sock.recv
        return await self._io(_RECV, lambda: recv(flags | _NOBLOCK))

    async def recv_multipart(self, flags: int = 0) -> list[bytes]:
        """``sock.recv_multipart()``."""
        return await self._io(_RECV, lambda: self.sock.recv_multipart(flags | _NOBLOCK))

    def _kick(self, events: int) -> None:
        """Wake the parked tasks if a direction they wait for is ready."""
        parked = self._parked
        if (events & _POLLIN and parked[_RECV]) or (events & _POLLOUT and parked[_SEND]):
            self._async.wake()

    async def _io(self, direction: int, call: Callable[[], R]) -> R:
        parked = False
        getsockopt = self.sock.getsockopt
        flag = _FLAG[direction]
        # A receive looks at EVENTS before it tries: a receive that would
        # block costs pyzmq a zmq.Again built in Python (its __init__ asks
        # for the error text), several times what reading EVENTS costs; a
        # send usually goes through, and tries first.
        look_first = direction == _RECV

        def op(_fd: int) -> R:
            nonlocal parked
            if parked:  # woken: no longer parked
                parked = False
                self._parked[direction] -= 1
            # reading EVENTS processes libzmq's commands (and clears
            # zmq.FD): what it says then is all the signal there is
            events = cast(int, getsockopt(_EVENTS)) if look_first else flag
            while True:
                if events & flag:
                    try:
                        result = call()
                    except zmq.Again:
                        pass
                    else:
                        if self._parked[0] or self._parked[1]:
                            # the call may have taken the signal a parked
                            # task needed
                            self._kick(cast(int, getsockopt(_EVENTS)))
                        return result
                    events = cast(int, getsockopt(_EVENTS))
                    if events & flag:
                        continue  # became ready meanwhile: no wait
                if self._parked[0] or self._parked[1]:
                    self._kick(events)
                parked = True
                self._parked[direction] += 1
                raise WouldBlock

        try:
            if direction == _RECV:
                return await self._async.read_with(op)
            # zmq.FD is always writable: its readability says a send may go
            return await self._async.write_with(op, wait="readable")
        finally:
            if parked:  # cancelled (or closed) while waiting
                self._parked[direction] -= 1

    def close(self, linger: int | None = None) -> None:
        """Wake the waiting tasks with ClosedResourceError, then close the socket."""
        self._async.into_inner()
        self.sock.close(linger)
