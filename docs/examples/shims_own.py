import asyncio
import os
import tty

from prompt_toolkit.input.vt100 import Vt100Input

from adapt import Async, reads, writes


class AsyncVt100Input(Async[Vt100Input], wraps=Vt100Input):
    """prompt_toolkit's terminal input, awaitable.

    ``read_keys()`` never blocks: it returns ``[]`` when no key has arrived
    (and at end of input, where ``closed`` is true).
    """

    read_keys = reads(
        Vt100Input.read_keys, would_block_if=lambda inp, keys: not keys and not inp.closed
    )


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


async def keys_from_a_terminal() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    with open(slave, encoding="utf-8") as stdin:
        async with AsyncVt100Input(Vt100Input(stdin)) as keyboard:
            asyncio.get_running_loop().call_later(0.05, os.write, master, b"hi\x1b[A")
            keys = await keyboard.read_keys()  # waits: [] meant "would block"
            while len(keys) < 3:
                keys += await keyboard.read_keys()
            print([k.key for k in keys])
    os.close(master)


async def doorbell() -> None:
    async with AsyncDoorbell(Doorbell()) as bell:
        asyncio.get_running_loop().call_later(0.01, bell.get_ref().ring, 3)
        print("rang", await bell.take(), "times")


async def main() -> None:
    await keys_from_a_terminal()
    await doorbell()


asyncio.run(main())

# Output:
# ['h', 'i', <Keys.Up: 'up'>]
# rang 3 times
