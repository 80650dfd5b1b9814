"""The zmq recipe over real ZeroMQ sockets (tcp and inproc), on every loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
import zmq
from adapt.recipes import zmq as recipe
from adapt.recipes.zmq import Socket

from adapt import Async

from ._example import example_main


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.term()


def _pair(ctx: zmq.Context[zmq.Socket[bytes]], server: int, client: int) -> tuple[Socket, Socket]:
    a = Socket(ctx.socket(server))
    port = a.sock.bind_to_random_port("tcp://127.0.0.1")
    b = Socket(ctx.socket(client))
    b.sock.connect(f"tcp://127.0.0.1:{port}")
    return a, b


async def test_example(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    await example_main(recipe)()
    assert capsys.readouterr().out == "b'ping'\nb'pong'\n"


async def test_req_rep_round_trips(backend: str, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    rep, req = _pair(ctx, zmq.REP, zmq.REQ)
    try:
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                for _ in range(200):
                    await rep.send(b"re: " + await rep.recv())

            tg.start_soon(serve)
            with anyio.fail_after(10):
                for i in range(200):
                    await req.send(b"%d" % i)
                    assert await req.recv() == b"re: %d" % i
    finally:
        req.close(0)
        rep.close(0)


async def test_pub_sub_multipart(backend: str, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    pub, sub = _pair(ctx, zmq.PUB, zmq.SUB)
    sub.sock.setsockopt(zmq.SUBSCRIBE, b"news")
    try:
        got: list[list[bytes]] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def receive() -> None:
                    while len(got) < 100:
                        got.append(await sub.recv_multipart())

                tg.start_soon(receive)
                while not got:  # a slow joiner: publish until the subscription is in
                    await pub.send_multipart([b"news", b"warm-up"])
                    await anyio.sleep(0.01)
                for i in range(100):
                    await pub.send_multipart([b"sport", b"%d" % i])  # filtered out
                    await pub.send_multipart([b"news", b"%d" % i])
        numbered = [parts for parts in got if parts[1] != b"warm-up"]
        assert numbered == [[b"news", b"%d" % i] for i in range(len(numbered))]
        assert all(parts[0] == b"news" for parts in got)
    finally:
        sub.close(0)
        pub.close(0)


def _pair_with_thread_router(
    ctx: zmq.Context[zmq.Socket[bytes]],
) -> tuple[zmq.Socket[bytes], Socket]:
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = Socket(ctx.socket(zmq.DEALER))
    dealer.sock.connect(f"tcp://127.0.0.1:{port}")
    return router, dealer


async def _dealer_round_trips(
    send: Callable[[bytes], Awaitable[None]],
    recv: Callable[[], Awaitable[bytes]],
    router: zmq.Socket[bytes],
) -> list[bytes]:
    """Two requests sent by one task, their replies awaited by another one
    that parked first, echoed by a thread; returns the replies that arrived
    within 1 s."""
    got: list[bytes] = []

    def echo() -> None:
        for _ in range(2):
            ident, body = router.recv_multipart()
            router.send_multipart([ident, b"re: " + body])

    async def receive() -> None:
        while len(got) < 2:
            got.append(await recv())

    thread = threading.Thread(target=echo)
    thread.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await anyio.sleep(0.05)  # the receiver is parked
            for body in (b"a", b"b"):
                await send(body)
                # busy elsewhere (no await): the reply arrives before the
                # loop polls again, and the next send runs first
                time.sleep(0.1)
            with anyio.move_on_after(1):
                while len(got) < 2:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    finally:
        thread.join(5)
    return got


async def test_plain_read_with_strands_a_reply(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    # What the recipe fixes: zmq.FD is edge-triggered, and the sending
    # task's send consumes the signal the parked receiver needed.
    router, dealer_recipe = _pair_with_thread_router(ctx)
    dealer = dealer_recipe.sock
    dealer_recipe._async.into_inner()  # the plain way instead of the recipe's
    plain = Async(dealer.getsockopt(zmq.FD), nonblocking=False, would_block=zmq.Again)

    async def send(body: bytes) -> None:
        await plain.write_with(lambda _: dealer.send(body, zmq.NOBLOCK))

    async def recv() -> bytes:
        return await plain.read_with(lambda _: dealer.recv(zmq.NOBLOCK))

    try:
        got = await _dealer_round_trips(send, recv, router)
        assert len(got) < 2  # stranded in the socket while the receiver sleeps
        assert dealer.getsockopt(zmq.EVENTS) & zmq.POLLIN  # ... although it is there
    finally:
        plain.into_inner()
        dealer_recipe.close(0)
        router.close(0)


async def test_concurrent_send_and_recv_tasks_strand_nothing(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    router, dealer = _pair_with_thread_router(ctx)
    try:
        got = await _dealer_round_trips(dealer.send, dealer.recv, router)
        assert got == [b"re: a", b"re: b"]
    finally:
        dealer.close(0)
        router.close(0)


def _at_high_water_mark(ctx: zmq.Context[zmq.Socket[bytes]]) -> tuple[Socket, Socket]:
    pull = Socket(ctx.socket(zmq.PULL))
    pull.sock.setsockopt(zmq.RCVHWM, 1)
    pull.sock.bind("inproc://hwm")
    push = Socket(ctx.socket(zmq.PUSH))
    push.sock.setsockopt(zmq.SNDHWM, 1)
    push.sock.connect("inproc://hwm")
    return push, pull


async def test_plain_write_with_at_the_high_water_mark_is_a_busy_loop_error(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    # What the recipe avoids: zmq.FD is always writable (an eventfd), so a
    # plain write_with would spin; adapt stops it with a clear error.
    push, pull = _at_high_water_mark(ctx)
    plain = Async(push.sock.getsockopt(zmq.FD), nonblocking=False, would_block=zmq.Again)
    attempts = 0

    def send(_: int) -> None:
        nonlocal attempts
        attempts += 1
        push.sock.send(b"x", zmq.NOBLOCK)

    try:
        with anyio.fail_after(10), pytest.raises(RuntimeError, match="busy loop"):  # noqa: PT012
            while True:
                await plain.write_with(send)
        assert attempts > 1000  # it was spinning
    finally:
        plain.into_inner()
        push.close(0)
        pull.close(0)


class _CountingSocket(zmq.Socket[bytes]):
    """A zmq socket that counts its send attempts."""

    sends = 0

    def send(self, *args: Any, **kwargs: Any) -> Any:
        type(self).sends += 1
        return super().send(*args, **kwargs)


async def test_send_at_the_high_water_mark_makes_few_attempts(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    _CountingSocket.sends = 0
    pull = Socket(ctx.socket(zmq.PULL))
    pull.sock.setsockopt(zmq.RCVHWM, 1)
    pull.sock.bind("inproc://hwm-count")
    push = Socket(ctx.socket(zmq.PUSH, socket_class=_CountingSocket))
    push.sock.setsockopt(zmq.SNDHWM, 1)
    push.sock.connect("inproc://hwm-count")
    try:
        sent = 0
        with anyio.move_on_after(0.5):
            while True:
                await push.send(b"%d" % sent)
                sent += 1
        # one attempt per message that went, and a few for the one that waits
        assert _CountingSocket.sends <= sent + 3
        with anyio.fail_after(10):
            assert await pull.recv() == b"0"
    finally:
        push.close(0)
        pull.close(0)


async def test_send_parks_at_the_high_water_mark_without_spinning(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    push, pull = _at_high_water_mark(ctx)
    try:
        sent = 0
        cpu = time.process_time()
        with anyio.move_on_after(0.5):
            while True:
                await push.send(b"%d" % sent)
                sent += 1
        assert time.process_time() - cpu < 0.25  # parked, not spinning
        assert 1 <= sent < 10
        got: list[bytes] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def produce() -> None:
                    for i in range(sent, 500):
                        await push.send(b"%d" % i)

                tg.start_soon(produce)
                while len(got) < 500:
                    got.append(await pull.recv())
        assert got == [b"%d" % i for i in range(500)]
    finally:
        push.close(0)
        pull.close(0)


async def test_many_receivers_on_one_socket(
    backend: str, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    pull, push = _pair(ctx, zmq.PULL, zmq.PUSH)
    try:
        got: list[bytes] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def receive() -> None:
                    while True:
                        got.append(await pull.recv())

                for _ in range(4):
                    tg.start_soon(receive)
                await anyio.sleep(0.05)
                for i in range(400):
                    await push.send(b"%d" % i)
                    if i % 50 == 0:
                        await anyio.sleep(0.01)
                while len(got) < 400:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()  # parked receivers leave cleanly
        assert sorted(got, key=int) == [b"%d" % i for i in range(400)]
        assert pull._parked == [0, 0]
    finally:
        push.close(0)
        pull.close(0)


def test_a_socket_opens_no_fd_of_its_own(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    import os

    raw = ctx.socket(zmq.DEALER)
    raw.getsockopt(zmq.FD)  # libzmq's own fd exists before the recipe wraps it
    before = len(os.listdir("/proc/self/fd"))
    sock = Socket(raw)
    try:
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        sock.close(0)
