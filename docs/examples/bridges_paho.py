import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt

from adapt import Sender, channel, oneshot


async def connect(client: mqtt.Client, port: int) -> None:
    callback, connected = oneshot[Any]()
    client.on_connect = lambda c, userdata, flags, reason, props: callback(reason)
    client.connect_async("127.0.0.1", port)
    client.loop_start()  # paho's own network thread from here on
    reason = await connected  # on_connect ran in paho's thread
    if reason.is_failure:
        raise ConnectionError(reason)


async def subscribe(client: mqtt.Client, topic: str) -> None:
    callback, subscribed = oneshot[Any]()
    client.on_subscribe = lambda c, userdata, mid, codes, props: callback(codes)
    client.subscribe(topic, qos=1)
    await subscribed


def forward_payloads(send: Sender[bytes]) -> Callable[..., None]:
    def on_message(client: mqtt.Client, userdata: Any, message: Any) -> None:
        send(message.payload)  # in paho's thread

    return on_message


async def receive(port: int, count: int) -> list[bytes]:
    send, stream = channel[bytes](maxsize=64)  # a full buffer makes paho's thread wait
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = forward_payloads(send)
    sub.on_disconnect = lambda c, userdata, flags, reason, props: send.close()
    got: list[bytes] = []
    try:
        await connect(sub, port)
        await subscribe(sub, "demo/topic")
        await connect(pub, port)
        for i in range(count):
            pub.publish("demo/topic", f"message {i}".encode(), qos=1)
        async for payload in stream:
            got.append(payload)
            if len(got) == count:
                sub.disconnect()  # on_disconnect ends the stream
    finally:
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()
    return got


@contextmanager
def mosquitto() -> Iterator[int]:
    """A mosquitto broker on loopback, on a free port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        conf.flush()
        broker = subprocess.Popen([binary, "-c", conf.name], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield port
        finally:
            broker.terminate()
            broker.wait()


with mosquitto() as port:
    messages = asyncio.run(receive(port, 100))
print(len(messages), messages[0], messages[-1])

# Output:
# 100 b'message 0' b'message 99'
