"""Property: BufferedStream hands out exactly the bytes it read, in order,
however the reads cut them and whatever mix of calls takes them."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapt import BufferedStream, IncompleteReadError, LimitOverrunError

from .conftest import BACKENDS, run_async

LIMIT = 64

# what each read brings (bytes or, as a library's read op may return, a
# bytearray); lines short and long, so records fit in one read, straddle
# two, or span many
chunks = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\0", b"\n")), st.booleans()
    ),
    min_size=0,
    max_size=25,
)
calls = st.lists(
    st.one_of(
        st.just(("readline",)),
        st.tuples(st.just("readexactly"), st.integers(0, 90)),
        st.tuples(st.just("readuntil"), st.sampled_from([b"\n", b"ab", b"\n\n"])),
        st.tuples(st.just("read"), st.integers(1, 90)),
    ),
    min_size=1,
    max_size=40,
)


class Model:
    """What each call must return, from the whole byte string."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, end: int) -> bytes:
        out, self.pos = self.data[self.pos : end], end
        return out

    def readline(self) -> Any:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            if len(self.data) - self.pos >= LIMIT:
                return LimitOverrunError
            return self.take(len(self.data))
        if end + 1 - self.pos > LIMIT:
            return LimitOverrunError
        return self.take(end + 1)

    def readuntil(self, sep: bytes) -> Any:
        end = self.data.find(sep, self.pos)
        if end < 0:
            if len(self.data) - self.pos >= LIMIT:
                return LimitOverrunError
            return IncompleteReadError, self.take(len(self.data))
        if end + len(sep) - self.pos > LIMIT:
            return LimitOverrunError
        return self.take(end + len(sep))

    def readexactly(self, n: int) -> Any:
        if len(self.data) - self.pos < n:
            return IncompleteReadError, self.take(len(self.data))
        return self.take(self.pos + n)


async def _check(parts: list[tuple[bytes, bool]], ops: list[tuple[Any, ...]]) -> None:
    data = b"".join(p for p, _ in parts)
    queue = [bytearray(p) if as_bytearray else p for p, as_bytearray in parts]

    def read(sock: socket.socket, size: int) -> bytes | bytearray:
        # the reads as planned: never more than one part, never a would-block
        return queue.pop(0) if queue else b""

    model = Model(data)
    a, b = socket.socketpair()
    with b:
        async with BufferedStream(a, read=read, chunk_size=40, limit=LIMIT) as stream:
            for name, *args in ops:
                if name == "read":
                    got = await stream.read(args[0])
                    # read(n) returns what is buffered, or one read's worth
                    assert got == data[model.pos : model.pos + len(got)]
                    assert got or model.pos == len(data)
                    model.pos += len(got)
                    assert type(got) is bytes
                    continue
                want = getattr(model, name)(*args)
                got: Any
                try:
                    got = await getattr(stream, name)(*args)
                except LimitOverrunError:
                    got = LimitOverrunError
                except IncompleteReadError as exc:
                    got = (IncompleteReadError, exc.partial)
                assert got == want
                if got is LimitOverrunError:
                    # nothing consumed: the rest comes byte-exact with read()
                    break
                partial = got[1] if isinstance(got, tuple) else got
                assert type(partial) is bytes
            assert await stream.read() == data[model.pos :]
            assert stream.at_eof()
            assert type(await stream.read()) is bytes


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=chunks, ops=calls)
def test_every_byte_once_in_order(backend: str, parts: list[tuple[bytes, bool]], ops: Any) -> None:
    run_async(backend, _check, parts=parts, ops=ops)
