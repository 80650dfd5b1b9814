"""Property: cancelling readers at random points never loses, duplicates or reorders data."""

from __future__ import annotations

import socket

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapt import Async

from .conftest import BACKENDS, run_async

RECORD = 8  # b"%08d"


async def _stream(sock_type: int, writes: list[int], reads: list[tuple[int, float]]) -> None:
    a, b = socket.socketpair(type=sock_type)
    with a, b:
        rx, tx = Async(a), Async(b)
        total = sum(writes)
        expected = b"".join(b"%08d" % i for i in range(total))
        received = bytearray()

        async def writer() -> None:
            pos = 0
            for n in writes:
                chunk = expected[pos * RECORD : (pos + n) * RECORD]
                await tx.sendall(chunk)
                pos += n
                await anyio.sleep(0)

        async def reader() -> None:
            i = 0
            while len(received) < len(expected):
                size, timeout = reads[i % len(reads)]
                i += 1
                # cancelled at a random point: in the wait, or after data came
                with anyio.move_on_after(timeout):
                    data = await rx.recv(size)
                    received.extend(data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
        assert bytes(received) == expected
        rx.into_inner()
        tx.into_inner()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    writes=st.lists(st.integers(1, 200), min_size=1, max_size=30),
    reads=st.lists(
        st.tuples(st.integers(1, 4096), st.sampled_from([0.0, 0.0001, 0.0005, 0.002, 1.0])),
        min_size=1,
        max_size=20,
    ),
)
def test_random_cancellation_loses_nothing(
    backend: str, writes: list[int], reads: list[tuple[int, float]]
) -> None:
    run_async(backend, _stream, sock_type=socket.SOCK_STREAM, writes=writes, reads=reads)
