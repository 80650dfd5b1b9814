"""A real callback library: paho-mqtt's own network thread against a real broker.

The module starts mosquitto on 127.0.0.1 on a free port with a generated
config, and stops it afterwards (even when a test fails).  paho runs its
network thread (``loop_start()``), which calls our callbacks; messages flow
through ``channel()`` into ``async for``, and connection events through
``oneshot()``.  Without the mosquitto binary the tests are skipped, except
under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

paho = pytest.importorskip("paho.mqtt.client")
mqtt: Any = paho

from adapt import CallbackDropped, Sender, channel, oneshot  # noqa: E402

TIMEOUT = 10.0


# -- the broker ----------------------------------------------------------------


def _mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
        found = "/usr/sbin/mosquitto"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A mosquitto broker on 127.0.0.1; yields its port."""
    binary = _mosquitto()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed (Debian package: mosquitto)")
        pytest.skip("mosquitto is not installed (Debian package: mosquitto)")
    workdir: Path = tmp_path_factory.mktemp("mosquitto")
    log_path = workdir / "mosquitto.log"
    for _attempt in range(3):  # the free port may be taken between bind and listen
        port = _free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if _wait_listening(port, proc, time.monotonic() + TIMEOUT):
                yield port
                return
        finally:
            _stop(proc)
    pytest.fail(f"mosquitto did not start; its log:\n{log_path.read_text()}")


# -- helpers -----------------------------------------------------------------------


def new_client() -> Any:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"adapt-{uuid.uuid4().hex}")


def forward_payloads(send: Sender[bytes], threads: set[str]) -> Callable[..., None]:
    """An on_message callback that holds ``send`` (and nothing else of ours)."""

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        threads.add(threading.current_thread().name)
        send(message.payload)

    return on_message


def on_connect_calling(callback: Callable[[Any], None]) -> Callable[..., None]:
    """An on_connect callback that holds ``callback`` (and nothing else of ours)."""

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        callback(reason)

    return on_connect


async def connect(client: Any, port: int) -> None:
    callback, connected = oneshot[Any]()
    client.on_connect = lambda c, u, flags, rc, props: callback(rc)
    client.connect_async("127.0.0.1", port)
    client.loop_start()  # paho's own network thread from here on
    with anyio.fail_after(TIMEOUT):
        reason = await connected
    assert not reason.is_failure, reason


async def subscribe(client: Any, topic: str) -> None:
    callback, subscribed = oneshot[Any]()
    client.on_subscribe = lambda c, u, mid, codes, props: callback(codes)
    client.subscribe(topic, qos=1)
    with anyio.fail_after(TIMEOUT):
        codes = await subscribed
    assert not any(code.is_failure for code in codes), codes


def stop(*clients: Any) -> None:
    for client in clients:
        client.disconnect()
        client.loop_stop()  # joins paho's thread


# -- tests ------------------------------------------------------------------------


async def test_messages_flow_from_the_network_thread_into_async_for(
    backend: str, broker: int
) -> None:
    topic = f"adapt/{uuid.uuid4().hex}"
    n = 500
    # start: channel-paho
    send, stream = channel[bytes](maxsize=64)
    threads: set[str] = set()
    sub, pub = new_client(), new_client()
    sub.on_message = forward_payloads(send, threads)
    sub.on_disconnect = lambda c, u, flags, rc, props: send.close()
    try:
        await connect(sub, broker)
        await subscribe(sub, topic)
        await connect(pub, broker)
        for i in range(n):
            pub.publish(topic, f"message {i}".encode(), qos=1)
        got: list[bytes] = []
        with anyio.fail_after(TIMEOUT):
            async for payload in stream:
                got.append(payload)
                if len(got) == n:
                    sub.disconnect()  # on_disconnect closes the stream
    finally:
        stop(sub, pub)
    assert got == [f"message {i}".encode() for i in range(n)]
    assert send.dropped == 0
    # end: channel-paho
    assert threading.current_thread().name not in threads  # paho's thread sent them


async def test_backpressure_blocks_the_network_thread_and_loses_nothing(
    backend: str, broker: int
) -> None:
    topic = f"adapt/{uuid.uuid4().hex}"
    n = 300
    send, stream = channel[bytes](maxsize=4)  # Overflow.BLOCK by default
    sub, pub = new_client(), new_client()
    sub.on_message = forward_payloads(send, set())
    try:
        await connect(sub, broker)
        await subscribe(sub, topic)
        await connect(pub, broker)
        for i in range(n):
            pub.publish(topic, b"%d" % i, qos=1)
        with anyio.fail_after(TIMEOUT):
            while len(stream) < 4:
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)
        assert len(stream) == 4  # the stalled consumer holds paho's thread
        got: list[bytes] = []
        with anyio.fail_after(TIMEOUT):
            async for payload in stream:
                got.append(payload)
                if len(got) == n:
                    break
    finally:
        stream.close()  # releases paho's thread if the test failed while it was blocked
        stop(sub, pub)
    assert got == [b"%d" % i for i in range(n)]
    assert send.dropped == 0


async def test_a_client_discarded_with_our_sender_ends_the_stream(
    backend: str, broker: int
) -> None:
    topic = f"adapt/{uuid.uuid4().hex}"
    # start: channel-dropped
    send, stream = channel[bytes]()
    sub, pub = new_client(), new_client()
    sub.on_message = forward_payloads(send, set())
    del send  # from now on only the client holds the sender
    try:
        await connect(sub, broker)
        await subscribe(sub, topic)
        await connect(pub, broker)
        for i in range(3):
            pub.publish(topic, b"%d" % i, qos=1)
        with anyio.fail_after(TIMEOUT):
            while len(stream) < 3:
                await anyio.sleep(0.01)
    finally:
        stop(sub, pub)
    del sub  # the library object goes away without ever closing the stream
    gc.collect()
    got: list[bytes] = []

    async def consume() -> None:
        async for payload in stream:
            got.append(payload)

    with anyio.fail_after(TIMEOUT), pytest.raises(CallbackDropped):
        await consume()
    assert got == [b"0", b"1", b"2"]  # what was sent before is still delivered
    # end: channel-dropped


async def test_a_client_discarded_before_connecting_drops_the_oneshot(
    backend: str, broker: int
) -> None:
    client = new_client()
    callback, connected = oneshot[Any]()
    client.on_connect = on_connect_calling(callback)
    del callback  # from now on only the client holds it
    await anyio.sleep(0.01)
    assert not connected.done()
    del client  # abandoned before connecting: on_connect will never be called
    gc.collect()
    with anyio.fail_after(TIMEOUT), pytest.raises(CallbackDropped):
        await connected
