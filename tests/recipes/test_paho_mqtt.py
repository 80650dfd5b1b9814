"""The paho_mqtt recipe against a real mosquitto broker, on every loop."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import anyio
import paho.mqtt.client as mqtt
import pytest
from adapt.recipes import paho_mqtt as recipe
from adapt.recipes.paho_mqtt import MQTT
from paho.mqtt.enums import CallbackAPIVersion

from adapt import Async, ChannelFull, channel, run_sync

from ._example import example_main
from .servers import start_mosquitto


def _topic() -> str:
    return f"adapt/{uuid.uuid4().hex}"


async def test_example(backend: str, mosquitto: int, capsys: pytest.CaptureFixture[str]) -> None:
    await example_main(recipe, port=mosquitto)()
    assert capsys.readouterr().out == "greetings/world b'hello'\n"


async def test_qos0_and_qos1_in_order(backend: str, mosquitto: int) -> None:
    topic = _topic()
    sub, pub = MQTT(), MQTT()
    try:
        await sub.connect("127.0.0.1", mosquitto)
        await sub.subscribe(topic, qos=1)
        await pub.connect("127.0.0.1", mosquitto)
        n = 500
        got: list[bytes] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for message in sub.messages():
                        got.append(message.payload)
                        if len(got) == 2 * n:
                            return

                tg.start_soon(consume)
                for i in range(n):
                    await pub.publish(topic, b"q0 %d" % i)
                for i in range(n):
                    await pub.publish(topic, b"q1 %d" % i, qos=1)  # waits for its PUBACK
        assert got == [b"q0 %d" % i for i in range(n)] + [b"q1 %d" % i for i in range(n)]
    finally:
        await sub.disconnect()
        await pub.disconnect()


async def test_slow_consumer_bounded_memory_nothing_lost(backend: str, mosquitto: int) -> None:
    topic = _topic()
    client = MQTT(maxsize=10)
    try:
        await client.connect("127.0.0.1", mosquitto)
        await client.subscribe(topic, qos=1)
        n = 200
        got: list[bytes] = []
        most = 0
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:

                async def produce() -> None:
                    # each publish pumps the client until its PUBACK, reading
                    # the messages that come back meanwhile
                    for i in range(n):
                        await client.publish(topic, b"%d" % i, qos=1)

                tg.start_soon(produce)
                async for message in client.messages():
                    got.append(message.payload)
                    most = max(most, len(client._messages))  # the channel's buffer
                    await anyio.sleep(0.002)  # a slow consumer
                    if len(got) == n:
                        break
        assert got == [b"%d" % i for i in range(n)]
        assert most <= 10  # the socket is not read while the buffer is full
    finally:
        await client.disconnect()


async def test_broker_loss_is_an_error(backend: str, tmp_path: Path) -> None:
    with start_mosquitto(tmp_path) as port:
        client = MQTT()
        await client.connect("127.0.0.1", port)
        await client.subscribe(_topic())
    try:
        with anyio.fail_after(10), pytest.raises(ConnectionError, match="closed"):
            async for _message in client.messages():
                pass
    finally:
        await client.disconnect()


async def test_refused_connection(backend: str) -> None:
    from .servers import free_port

    client = MQTT()
    try:
        with pytest.raises(ConnectionRefusedError):
            await client.connect("127.0.0.1", free_port())
    finally:
        await client.disconnect()


async def test_plain_bounded_channel_from_the_loop_thread_kills_the_pump(
    backend: str, mosquitto: int
) -> None:
    # What the recipe avoids: a bounded channel fed from on_message on the
    # loop's own thread cannot block, so it raises ChannelFull into paho,
    # which re-raises it out of its pump.
    topic = _topic()
    send, stream = channel[bytes](maxsize=4)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: send(message.payload)
    client.connect("127.0.0.1", mosquitto)
    try:
        client.subscribe(topic, qos=1)
        for _ in range(20):
            client.loop(0.05)
        client.publish(topic, b"x", qos=1)
        for _ in range(5):
            client.publish(topic, b"x", qos=0)

        def pump() -> None:
            for _ in range(50):
                client.loop(0.05)

        with pytest.raises(ChannelFull):
            pump()
    finally:
        stream.close()
        client.disconnect()


async def test_paced_channel_from_the_loop_thread_bounded_and_lossless(
    backend: str, mosquitto: int
) -> None:
    # The fix for the test above: overflow="pace" takes what paho delivers
    # in one read, and the pump stops reading (wait_room) while the slow
    # consumer is behind, so TCP pushes back on the broker.
    topic = _topic()
    maxsize, n = 5, 150
    send, stream = channel[bytes](maxsize=maxsize, overflow="pace")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: send(message.payload)
    subscribed: list[int] = []
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.append(mid)
    await run_sync(client.connect, "127.0.0.1", mosquitto)
    wrapper = Async(client.socket())  # a socket: paho keeps it non-blocking anyway
    publisher = MQTT()
    reads = 0

    async def pump() -> None:
        nonlocal reads
        while True:
            if not send.room:
                await send.wait_room()  # the consumer is behind: stop reading
                continue
            await wrapper.readable()
            client.loop_read()
            reads += 1
            while client.want_write():
                client.loop_write()

    try:
        client.subscribe(topic, qos=1)
        client.loop_write()
        await publisher.connect("127.0.0.1", mosquitto)
        got: list[bytes] = []
        most = 0
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                while not subscribed:
                    await anyio.sleep(0.01)

                async def publish() -> None:
                    for i in range(n):
                        await publisher.publish(topic, b"%d" % i, qos=1)

                tg.start_soon(publish)
                async for payload in stream:
                    most = max(most, len(stream) + 1)
                    got.append(payload)
                    await anyio.sleep(0.002)  # a slow consumer
                    if len(got) == n:
                        break
                tg.cancel_scope.cancel()
        assert got == [b"%d" % i for i in range(n)]  # all, in order: nothing lost
        assert most <= 2 * maxsize  # bounded: the bound plus what one read brought
        assert send.dropped == 0
    finally:
        stream.close()
        wrapper.into_inner()
        client.disconnect()
        await publisher.disconnect()


async def test_disconnect_after_a_large_qos0_publish_sends_it_and_closes_the_socket(
    backend: str, mosquitto: int
) -> None:
    # publish() returns once the message is queued; disconnect() must still
    # send it (as paho's own loop does before it closes) and close the socket
    # -- not leave the rest of the message, the DISCONNECT and the socket
    # behind once the socket's buffer is full
    topic = _topic()
    sub, pub = MQTT(), MQTT()
    payload = bytes(range(256)) * (128 << 10)  # 32 MiB: more than a socket buffer
    try:
        await sub.connect("127.0.0.1", mosquitto)
        await sub.subscribe(topic)
        await pub.connect("127.0.0.1", mosquitto)
        await pub.publish(topic, payload)
        await pub.disconnect()
        assert pub.client.socket() is None  # "close the socket"
        with anyio.fail_after(10):
            async for message in sub.messages():
                assert message.payload == payload
                break
    finally:
        sock = pub.client.socket()
        if sock is not None:
            sock.close()  # the socket disconnect() left open (not a leak of this test)
        await sub.disconnect()


async def test_a_second_disconnect_closes_no_other_fd(backend: str, mosquitto: int) -> None:
    # disconnect() in a finally after an explicit one: the recipe's timerfd
    # and eventfd numbers are free after the first, and a file opened since
    # may have taken one of them -- the second must not close that file
    client = MQTT()
    await client.connect("127.0.0.1", mosquitto)
    await client.disconnect()
    pipes = [os.pipe() for _ in range(3)]  # take the freed numbers
    try:
        await client.disconnect()
        for r, w in pipes:
            os.write(w, b"x")  # still open, still ours
            assert os.read(r, 1) == b"x"
    finally:
        for pipe in pipes:
            for fd in pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)


async def test_connect_again_after_a_lost_connection(backend: str, mosquitto: int) -> None:
    # No automatic reconnect: after the ConnectionError the caller connects
    # again.  That connect must wait for its own CONNACK, and later waits must
    # not raise the old connection's error.  (The broker drops a client when
    # another one connects with its client id.)
    topic, client_id = _topic(), uuid.uuid4().hex
    client = MQTT(mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id))
    try:
        await client.connect("127.0.0.1", mosquitto)
        await client.subscribe(topic)
        thief = MQTT(mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id))
        await thief.connect("127.0.0.1", mosquitto)
        await thief.disconnect()
        with anyio.fail_after(5), pytest.raises(ConnectionError, match="closed"):
            async for _message in client.messages():
                pass
        with anyio.fail_after(5):
            await client.connect("127.0.0.1", mosquitto)
            await client.subscribe(topic)
            await client.publish(topic, b"again", qos=1)
            async for message in client.messages():
                assert message.payload == b"again"
                break
    finally:
        await client.disconnect()
