"""User-declared shims: for a third-party class, and for a class you own.

The classes below are the examples the docs include.
"""

from __future__ import annotations

import inspect
import os
import tty
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from prompt_toolkit.input.vt100 import Vt100Input
from prompt_toolkit.keys import Keys

import adapt
from adapt import Async, reads, writes

# -- a class you do not own: prompt_toolkit's terminal input -----------------
# start: third-party


class AsyncVt100Input(Async[Vt100Input], wraps=Vt100Input):
    """prompt_toolkit's terminal input, awaitable.

    ``read_keys()`` never blocks: it returns ``[]`` when no key has arrived
    (and at end of input, where ``closed`` is true).
    """

    read_keys = reads(
        Vt100Input.read_keys, would_block_if=lambda inp, keys: not keys and not inp.closed
    )


# end: third-party


@pytest.fixture
def terminal() -> Iterator[tuple[int, Vt100Input]]:
    """``(master fd, Vt100Input over the slave side)`` of a raw-mode pty."""
    master, slave = os.openpty()
    tty.setraw(slave)
    with open(slave, encoding="utf-8") as stdin:
        try:
            yield master, Vt100Input(stdin)
        finally:
            os.close(master)


async def test_third_party_class(backend: str, terminal: tuple[int, Vt100Input]) -> None:
    master, inp = terminal
    async with Async(inp) as keyboard, anyio.create_task_group() as tg:
        assert isinstance(keyboard, AsyncVt100Input)

        async def type_keys() -> None:
            await anyio.sleep(0.05)
            os.write(master, b"hi\x1b[A")  # h, i, cursor up

        tg.start_soon(type_keys)
        keys = await keyboard.read_keys()  # waited: [] meant "would block"
        while len(keys) < 3:
            keys += await keyboard.read_keys()
    assert [k.key for k in keys] == ["h", "i", Keys.Up]


async def test_third_party_class_sync_side_unchanged(
    backend: str, terminal: tuple[int, Vt100Input]
) -> None:
    _, inp = terminal
    assert inp.read_keys() == []  # the sync method is the library's own
    assert Vt100Input.read_keys.__qualname__ == "Vt100Input.read_keys"
    assert not hasattr(Vt100Input.read_keys, "__adapt_shim__")


# -- a class you own: the decorator form -------------------------------------
# start: owned


class Doorbell:
    """A counter over an eventfd: ``ring()`` adds to it, ``take()`` empties it."""

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)

    @reads
    def take(self) -> int:
        """Return the count and reset it; BlockingIOError while it is zero."""
        return os.eventfd_read(self._fd)

    @writes
    def ring(self, times: int = 1) -> None:
        """Add ``times``; BlockingIOError if the count would overflow."""
        os.eventfd_write(self._fd, times)


class AsyncDoorbell(Async[Doorbell], wraps=Doorbell):
    take = Doorbell.take
    ring = Doorbell.ring


# end: owned


@pytest.fixture
def bell() -> Iterator[Doorbell]:
    bell = Doorbell()
    try:
        yield bell
    finally:
        bell.close()


def test_owned_class_stays_sync(bell: Doorbell) -> None:
    bell.ring(2)
    assert bell.take() == 2
    with pytest.raises(BlockingIOError):
        bell.take()
    assert not inspect.iscoroutinefunction(Doorbell.take)
    assert inspect.isfunction(vars(Doorbell)["take"])  # a plain method, not a descriptor
    assert str(inspect.signature(Doorbell.ring)) == "(self, times: 'int' = 1) -> 'None'"


async def test_owned_class_shims(backend: str, bell: Doorbell) -> None:
    a = Async(bell)
    try:
        assert isinstance(a, AsyncDoorbell)

        async def ring_later() -> None:
            await anyio.sleep(0.05)
            await a.ring(times=3)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ring_later)
            assert await a.take() == 3  # waited until readable
    finally:
        a.into_inner()


def test_shim_signature_and_doc() -> None:
    sig = inspect.signature(AsyncDoorbell.ring)
    assert str(sig) == "(self, times: 'int' = 1) -> 'Coroutine[Any, Any, None]'"
    assert AsyncDoorbell.ring.__qualname__ == "AsyncDoorbell.ring"
    assert "waits until writable" in (AsyncDoorbell.ring.__doc__ or "")
    assert "BlockingIOError if the count would overflow" in (AsyncDoorbell.ring.__doc__ or "")
    sig = inspect.signature(AsyncVt100Input.read_keys)
    assert str(sig) == "(self) -> 'Coroutine[Any, Any, list[KeyPress]]'"


def test_bound_shim_signature(bell: Doorbell) -> None:
    a = Async(bell)
    try:
        assert str(inspect.signature(a.ring)) == "(times: 'int' = 1) -> 'Coroutine[Any, Any, None]'"
    finally:
        a.into_inner()


# -- options and bad input ---------------------------------------------------


class NotReady(Exception):
    pass


class Mailbox:
    """A pipe reader whose ``get`` raises its own exception when empty."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.open_for_delivery = True

    def fileno(self) -> int:
        return self.r

    def get(self) -> bytes:
        try:
            return os.read(self.r, 100)
        except BlockingIOError:
            raise NotReady from None

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


class AsyncMailbox(Async[Mailbox], wraps=Mailbox):
    get = reads(Mailbox.get, would_block=NotReady)
    # run only when a poll test says so (objects with no non-blocking mode)
    get_when_ready = reads(Mailbox.get, ready=lambda box: box.open_for_delivery)


async def test_would_block_exception(backend: str) -> None:
    box = Mailbox()
    a = Async(box)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_write_later, box.w, b"mail")
            assert await a.get() == b"mail"
    finally:
        a.into_inner()
        box.close()


async def _write_later(fd: int, data: bytes) -> None:
    await anyio.sleep(0.05)
    os.write(fd, data)


async def test_ready_test(backend: str) -> None:
    box = Mailbox()
    box.open_for_delivery = False
    a = Async(box)
    os.write(box.w, b"early")
    try:

        async def allow() -> None:
            await anyio.sleep(0.05)
            box.open_for_delivery = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(allow)
            with anyio.fail_after(5):
                # readable at once, but not ready: the op waits (and re-tests on
                # every wake-up) until the test passes
                assert await a.get_when_ready() == b"early"
    finally:
        a.into_inner()
        box.close()


async def test_shim_attached_after_class_creation(backend: str) -> None:
    box = Mailbox()
    AsyncMailbox.late = reads(Mailbox.get, would_block=NotReady)  # type: ignore[attr-defined]
    a: Any = Async(box)
    try:
        os.write(box.w, b"x")
        assert await a.late() == b"x"
    finally:
        del AsyncMailbox.late  # type: ignore[attr-defined]
        a.into_inner()
        box.close()


def test_misspelled_user_shim() -> None:
    box = Mailbox()
    a = Async(box)
    try:
        with pytest.raises(AttributeError, match=r"did you mean 'get'\?"):
            a.gte  # type: ignore[attr-defined]  # noqa: B018
    finally:
        a.into_inner()
        box.close()


def test_bad_declarations() -> None:
    with pytest.raises(TypeError, match="wraps a sync method"):
        reads(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="would_block takes exception types"):
        writes(Mailbox.get, would_block=(NotReady, 42))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an Async subclass"):

        class Twice(Async[Any], wraps=AsyncMailbox):
            pass

    with pytest.raises(ValueError, match="dotted name"):

        class NoDot(Async[Any], wraps="Mailbox"):
            pass

    with pytest.raises(TypeError, match="takes a class"):

        class NotAClass(Async[Any], wraps=42):  # type: ignore[arg-type]
            pass


def test_lazy_name_that_names_nothing() -> None:
    class Ghost(Async[Any], wraps="json.NoSuchClass"):
        pass

    import json  # noqa: F401  (the module must be imported for the lookup)

    box = Mailbox()
    try:
        with pytest.raises(TypeError, match=r"Ghost: wraps='json.NoSuchClass' names no class"):
            Async(box)
        Async(box).into_inner()  # reported once; the bad entry is gone
    finally:
        box.close()


def test_public_names() -> None:
    assert adapt.reads is reads
    assert adapt.writes is writes
    assert isinstance(vars(AsyncMailbox)["get"], type(test_public_names))
