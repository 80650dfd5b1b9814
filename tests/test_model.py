"""Model-based test of the readiness core: random programs of fd operations.

Hypothesis generates programs over a few socket "slots" -- open / wrap /
wait / send / cancel / close / unnotified close / dup2 -- which run in one
event loop against a model of what each slot's socket holds.  After every
step:

* every byte a reader task got is the next one sent (nothing lost,
  duplicated or reordered), and a reader waiting on a live socket receives
  what was sent (a wait on a readable fd wakes);
* the kernel's epoll interest list of the loop (``/proc/self/fdinfo``) holds
  no fd but those a reader task waits on right now;
* a wrapper whose socket was closed -- through adapt or behind its back --
  fails at once instead of waiting.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapt import Async, ClosedResourceError

from .conftest import BACKENDS, epoll_interest, loop_epoll_fd, run_async

MAX_SLOTS = 4

STEP = st.one_of(
    st.tuples(st.just("open")),
    st.tuples(st.just("wrap"), st.integers(0, MAX_SLOTS - 1)),
    st.tuples(st.just("wait"), st.integers(0, MAX_SLOTS - 1), st.integers(0, 3)),
    st.tuples(st.just("send"), st.integers(0, MAX_SLOTS - 1), st.integers(1, 3000)),
    st.tuples(st.just("cancel"), st.integers(0, MAX_SLOTS - 1)),
    st.tuples(st.just("close"), st.integers(0, MAX_SLOTS - 1), st.integers(0, 3)),
    st.tuples(st.just("unnotified"), st.integers(0, MAX_SLOTS - 1)),
    st.tuples(st.just("dup2"), st.integers(0, MAX_SLOTS - 1)),
)


@dataclass
class Slot:
    """One socket object ``a`` (what gets wrapped) and the peer of its file."""

    a: socket.socket
    peer: socket.socket
    state: str = "live"  # or "closed" (through adapt), "gone" (behind its back)
    wrappers: list[Async[socket.socket]] = field(default_factory=list)
    sent: bytearray = field(default_factory=bytearray)
    got: bytearray = field(default_factory=bytearray)
    reader: anyio.CancelScope | None = None
    reader_error: BaseException | None = None
    counter: int = 0

    def payload(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += b"%07d," % self.counter
            self.counter += 1
        return bytes(out[:n])


async def _run_program(steps: list[tuple[object, ...]]) -> None:
    slots: list[Slot] = []
    epfd = loop_epoll_fd()
    baseline = epoll_interest(epfd) if epfd is not None else set()

    try:
        await _steps(steps, slots, epfd, baseline)
    finally:
        for s in slots:
            s.a.close()
            s.peer.close()


async def _steps(
    steps: list[tuple[object, ...]], slots: list[Slot], epfd: int | None, baseline: set[int]
) -> None:
    async def settle() -> None:
        for _ in range(3):
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:

        async def read(slot: Slot, wrapper: Async[socket.socket], scope: anyio.CancelScope) -> None:
            with scope:
                try:
                    while data := await wrapper.recv(4096):
                        slot.got += data
                    slot.reader_error = EOFError()
                except (ClosedResourceError, OSError) as exc:
                    slot.reader_error = exc
            if slot.reader is scope:
                slot.reader = None

        def check_interest() -> None:
            if epfd is None:
                return
            waiting = {s.a.fileno() for s in slots if s.reader is not None and s.state == "live"}
            extra = epoll_interest(epfd) - baseline - waiting
            assert not extra, f"the epoll interest list holds fds nobody waits on: {extra}"

        # every program starts with two wrapped sockets
        for step in [("open",), ("open",), ("wrap", 0), ("wrap", 1), *steps]:
            kind = step[0]
            slot = slots[int(step[1]) % len(slots)] if len(step) > 1 and slots else None  # type: ignore[call-overload]
            if kind == "open":
                if len(slots) < MAX_SLOTS:
                    a, b = socket.socketpair()
                    slots.append(Slot(a, b))
            elif slot is None:
                continue
            elif kind == "wrap":
                if slot.state == "live":
                    slot.wrappers.append(Async(slot.a))
            elif kind == "wait":
                if slot.reader is None and slot.wrappers:
                    wrapper = slot.wrappers[int(step[2]) % len(slot.wrappers)]  # type: ignore[call-overload]
                    if slot.state == "live":
                        scope = slot.reader = anyio.CancelScope()
                        tg.start_soon(read, slot, wrapper, scope)
                    else:
                        # closed through adapt or behind its back: fails at once
                        with anyio.fail_after(2):
                            with pytest.raises((ClosedResourceError, OSError)):
                                await wrapper.recv(10)
            elif kind == "send":
                if slot.state == "live":
                    data = slot.payload(int(step[2]))  # type: ignore[call-overload]
                    slot.peer.sendall(data)
                    slot.sent += data
                    if slot.reader is not None:
                        with anyio.fail_after(2):  # the parked reader wakes
                            while len(slot.got) < len(slot.sent):
                                await anyio.sleep(0.001)
            elif kind == "cancel":
                if slot.reader is not None:
                    slot.reader.cancel()
                    slot.reader = None
            elif kind == "close":
                if slot.wrappers:
                    wrapper = slot.wrappers[int(step[2]) % len(slot.wrappers)]  # type: ignore[call-overload]
                    reader = slot.reader
                    await wrapper.aclose()
                    if slot.state == "live":
                        slot.state = "closed"
                        if reader is not None:
                            with anyio.fail_after(2):
                                while slot.reader is reader:
                                    await anyio.sleep(0.001)
                            assert isinstance(slot.reader_error, ClosedResourceError)
            elif kind == "unnotified":
                if slot.state == "live" and slot.reader is None:
                    slot.a.close()  # behind adapt's back
                    slot.state = "gone"
            elif kind == "dup2" and slot.state == "live" and slot.reader is None:
                # another file takes the number, behind adapt's back
                c, d = socket.socketpair()
                # (non-blocking like the file it replaces: the mode
                # belongs to the file, which adapt set when wrapping)
                c.setblocking(False)
                os.dup2(c.fileno(), slot.a.fileno())
                c.close()
                slot.peer.close()
                slot.peer = d
                slot.sent.clear()
                slot.got.clear()
            await settle()
            for s in slots:
                assert s.got == s.sent[: len(s.got)], "lost, duplicated or reordered bytes"
            check_interest()

        for s in slots:
            if s.reader is not None:
                s.reader.cancel()
                s.reader = None
    for s in slots:
        if s.state == "live":
            rest = bytearray()
            s.a.setblocking(False)
            try:
                while chunk := s.a.recv(65536):
                    rest += chunk
            except BlockingIOError:
                pass
            assert s.got + rest == s.sent, "bytes lost between the readers and the socket"
        for w in s.wrappers:
            if s.state == "live":
                w.into_inner()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=3, max_size=30))
def test_model(backend: str, steps: list[tuple[object, ...]]) -> None:
    run_async(backend, _run_program, steps=steps)
