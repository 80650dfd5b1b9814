"""MQTT with paho-mqtt from async code: its socket pump driven by the awaiting tasks.

Requires: paho-mqtt 2.0 (``pip install paho-mqtt``).

Platforms: Linux (it uses ``select.epoll`` and a timerfd through ``ctypes``).

Adapts: a ``paho.mqtt.client.Client`` without its network thread.  paho is a
pump: ``loop_read()`` when the socket is readable, ``loop_write()`` while
``want_write()``, ``loop_misc()`` about once a second (keepalive pings,
timeouts).  ``loop_read`` swallows EAGAIN, so the recipe asks an epoll set
-- the MQTT socket (read interest while the message buffer has room, write
interest while paho wants to write), a one-second timerfd and an eventfd
-- what is ready, and runs the matching calls; tasks wait for the set's fd
to become readable.  A task whose step read something wakes the other
waiting tasks through the eventfd: what it read (an ack, a message) may be
what they wait for, and no readiness event would tell them.  There is no
background task: whichever task awaits something (:meth:`MQTT.connect`,
:meth:`MQTT.subscribe`, a QoS 1 :meth:`MQTT.publish` waiting for its ack,
the next of :meth:`MQTT.messages`) runs the pump until
what it waits for has happened, so the pump works on every loop and stops
with the last waiter.  Received messages wait in a bounded
:func:`adapt.channel` with the ``"pace"`` overflow policy (paho's
``on_message`` runs on the loop thread, which must neither block nor drop):
while ``Sender.room`` is 0 the socket is not read, so a slow consumer slows
the broker down (TCP backpressure) instead of growing memory or losing
messages.  One read may deliver a few messages past the bound; the channel
counts them and the bound holds again once the consumer has caught up.  A lost
connection raises ``ConnectionError`` in every waiting task.

Mode: only the recipe's own epoll fd is wrapped, with ``nonblocking=False``
(``epoll.poll(0)`` never blocks); paho's socket is never wrapped -- paho
sets its mode itself.

Caveats: the TCP connect (and DNS) runs in a worker thread
(:func:`adapt.run_sync`, paho's ``connect`` blocks); there is no automatic
reconnect.  Keepalive pings are sent only while some task awaits the client:
keep a task in ``messages()`` (or in any await) for a connection that must
stay up while idle.  While the message buffer is full, acks for QoS 1
publishes wait too.

Example::

    import asyncio
    from adapt.recipes.paho_mqtt import MQTT

    async def main():
        # `port` is an MQTT broker on 127.0.0.1 (the test starts mosquitto)
        mqtt = MQTT()
        await mqtt.connect("127.0.0.1", port)
        await mqtt.subscribe("greetings/#", qos=1)
        await mqtt.publish("greetings/world", b"hello", qos=1)
        async for message in mqtt.messages():
            print(message.topic, message.payload)
            break
        await mqtt.disconnect()

    asyncio.run(main())
"""

from __future__ import annotations

import ctypes
import os
import select
import time
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapt import Async, WouldBlock, channel, run_sync

__all__ = ["LIBRARY", "MQTT", "SUMMARY"]

LIBRARY = "paho-mqtt"
SUMMARY = "MQTT with paho-mqtt from async code: its socket pump driven by the awaiting tasks."

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


def _ticker(seconds: int) -> int:
    """A timerfd readable every ``seconds`` (Python 3.13 has os.timerfd_create)."""
    fd: int = _libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
    period = _Timespec(seconds, 0)
    spec = (_Timespec * 2)(period, period)  # struct itimerspec: interval, first
    if fd < 0 or _libc.timerfd_settime(fd, 0, spec, None) < 0:
        raise OSError(ctypes.get_errno(), "timerfd")
    return fd


class MQTT:
    """A paho client (``client``) pumped by the tasks that await it::

    client.connect(host, port); client.loop_forever()      # sync
    mqtt = MQTT(); await mqtt.connect(host, port)          # async
    """

    def __init__(self, client: Any = None, *, maxsize: int = 1000) -> None:
        self.client: Any = client or mqtt.Client(CallbackAPIVersion.VERSION2)
        self.maxsize = maxsize
        self._send, self._messages = channel[Any](maxsize, overflow="pace")
        self._acks: set[int] = set()
        self._connected: Any = None  # the CONNACK's reason code
        self._error: ConnectionError | None = None
        self._set = select.epoll()
        self._tick = _ticker(1)
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._parked = 0  # tasks waiting in _until
        self._set.register(self._tick, select.EPOLLIN)
        self._set.register(self._wake, select.EPOLLIN)
        self._async = Async(self._set.fileno(), nonblocking=False)
        self._sock = -1
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    # paho's callbacks (CallbackAPIVersion.VERSION2), run inside our steps
    def _on_connect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected = reason

    def _on_message(self, c: Any, u: Any, message: Any) -> None:
        self._send(message)  # never blocks nor raises: the pump checks room

    def _on_subscribe(self, c: Any, u: Any, mid: int, codes: Any, props: Any) -> None:
        self._acks.add(mid)

    def _on_disconnect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        self._error = ConnectionError(f"MQTT connection closed: {reason}")
        self._sock = -1  # paho closes it

    def _step(self) -> bool:
        """Run what the epoll set says is ready, then set the interests;
        False if nothing was ready."""
        ready = self._set.poll(0)
        for fd, events in ready:
            if fd == self._wake:
                continue
            if fd == self._tick:
                os.read(self._tick, 8)
                self.client.loop_misc()
            elif self._sock >= 0:
                if events & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    self.client.loop_read()
                if self._sock >= 0 and events & select.EPOLLOUT:
                    self.client.loop_write()
        if self._sock >= 0:
            room = bool(self._send.room)
            want = (select.EPOLLIN if room else 0) | (
                select.EPOLLOUT if self.client.want_write() else 0
            )
            self._set.modify(self._sock, want)
        return len(ready) > 0

    async def _until(self, ready: Callable[[], T | None]) -> T:
        """Pump until ``ready()`` returns something (not None)."""

        parked = False

        def op(_fd: int) -> T:
            nonlocal parked
            if parked:
                parked = False
                self._parked -= 1
            try:
                os.eventfd_read(self._wake)  # woken: the wake-up is spent
            except BlockingIOError:
                pass
            if self._step() and self._parked:
                # what this step read (an ack, a message...) may be what a
                # parked task waits for: no readiness event will tell it
                os.eventfd_write(self._wake, 1)
            result = ready()
            if result is not None:
                return result
            if self._error is not None:
                raise self._error
            parked = True
            self._parked += 1
            raise WouldBlock

        try:
            return await self._async.read_with(op)
        finally:
            if parked:  # cancelled while waiting
                self._parked -= 1

    async def connect(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        """Connect and wait for the broker's CONNACK."""
        self._connected = self._error = None  # a new connection's, not the last one's
        await run_sync(self.client.connect, host, port, keepalive)
        self._sock = self.client.socket().fileno()
        self._set.register(self._sock, select.EPOLLIN | select.EPOLLOUT)
        reason = await self._until(lambda: self._connected)
        if reason.is_failure:
            raise ConnectionError(f"the broker refused: {reason}")

    async def subscribe(self, topic: str, qos: int = 0) -> None:
        """Subscribe and wait for the SUBACK."""
        result, mid = self.client.subscribe(topic, qos)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(mqtt.error_string(result))
        await self._until(lambda: self._acked(mid))

    def _acked(self, mid: int) -> bool | None:
        if mid not in self._acks:
            return None
        self._acks.discard(mid)
        return True

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Publish; with QoS 1 or 2, wait until the broker has acknowledged it."""
        info = self.client.publish(topic, payload, qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(mqtt.error_string(info.rc))
        if qos == 0:  # queued: written now or by the next step
            await self._until(lambda: True)
        else:
            await self._until(lambda: True if info.is_published() else None)

    def messages(self) -> MQTT:
        """The received messages (``paho.mqtt.client.MQTTMessage``), in order."""
        return self

    def __aiter__(self) -> MQTT:
        return self

    async def __anext__(self) -> Any:
        if not len(self._messages):  # pump until one has arrived
            await self._until(lambda: True if len(self._messages) else None)
        return await self._messages.__anext__()  # buffered: returns at once

    async def disconnect(self) -> None:
        """Send what is queued and DISCONNECT, close the socket and the
        recipe's fds (a second call does nothing)."""
        try:
            if self._sock >= 0:
                self.client.disconnect()  # queued behind any unsent publish
                # paho closes the socket once the DISCONNECT is written
                await self._until(lambda: True if self._sock < 0 else None)
        finally:
            if not self._set.closed:
                sock = self.client.socket()
                if sock is not None:  # cancelled, or the write failed
                    sock.close()
                self._send.close()  # the messages received so far can still be read
                self._async.into_inner()
                self._set.close()
                os.close(self._tick)
                os.close(self._wake)
