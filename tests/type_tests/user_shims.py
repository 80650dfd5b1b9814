"""Type tests: shims users declare, for a third-party class and a class they own."""

from __future__ import annotations

import os
from typing import assert_type

from prompt_toolkit.input.vt100 import Vt100Input
from prompt_toolkit.key_binding import KeyPress

from adapt import Async, Shim, reads, writes


class AsyncVt100Input(Async[Vt100Input], wraps=Vt100Input):
    read_keys = reads(
        Vt100Input.read_keys, would_block_if=lambda inp, keys: not keys and not inp.closed
    )
    flush_keys = reads(Vt100Input.flush_keys)


class Doorbell:
    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK)

    def fileno(self) -> int:
        return self._fd

    @reads
    def take(self) -> int:
        return os.eventfd_read(self._fd)

    @writes(would_block=OverflowError)
    def ring(self, times: int = 1) -> None:
        os.eventfd_write(self._fd, times)


class AsyncDoorbell(Async[Doorbell], wraps=Doorbell):
    take = Doorbell.take
    ring = Doorbell.ring


async def positive(inp: Vt100Input, bell: Doorbell) -> None:
    keyboard = AsyncVt100Input(inp)
    assert_type(keyboard, AsyncVt100Input)
    assert_type(await keyboard.read_keys(), list[KeyPress])
    assert_type(keyboard.get_ref(), Vt100Input)

    a = AsyncDoorbell(bell)
    assert_type(a, AsyncDoorbell)
    assert_type(await a.take(), int)
    assert_type(await a.ring(), None)
    assert_type(await a.ring(times=2), None)
    # the owned class keeps its sync methods
    assert_type(bell.take(), int)
    assert_type(bell.ring(3), None)
    assert_type(Doorbell.take(bell), int)
    assert_type(Doorbell.take, Shim[Doorbell, [], int])


async def negative(inp: Vt100Input, bell: Doorbell) -> None:
    keyboard = AsyncVt100Input(inp)
    await keyboard.read_keys(1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await keyboard.send_bytes(b"")  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    a = AsyncDoorbell(bell)
    await a.ring("twice")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await bell.take()  # type: ignore[misc]  # pyright: ignore[reportGeneralTypeIssues]
    AsyncDoorbell(inp)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
    count: str = await a.take()  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    del count


class WrongTwin(Async[Vt100Input], wraps=Vt100Input):
    # a shim declared for another class: unusable on this wrapper
    take = Doorbell.take


async def wrong_twin(inp: Vt100Input) -> None:
    await WrongTwin(inp).take()  # type: ignore[arg-type]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
