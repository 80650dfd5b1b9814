"""Console input: await ainput(prompt) and async for line in lines() on stdin.

Requires: standard library.

Platforms: Linux (``/proc/self/fd``).

Adapts: the process's stdin, whatever it is.  A terminal, a pipe or a FIFO
can be polled: the recipe opens it again through ``/proc/self/fd/0`` -- a new
open file description of the same terminal or pipe, so ``O_NONBLOCK`` is set
on the recipe's own fd, never on the description that stdin, stdout and the
parent shell share (there it would make a ``print`` fail with
``BlockingIOError``) -- and reads it with adapt's
:class:`~adapt.BufferedStream`, no thread: the would-block signal is
``os.read``'s EAGAIN, the wait is ``read_with``.  A regular file (``prog <
file``) or ``/dev/null`` cannot be polled (epoll refuses them), so it is read
by ``adapt.reader()`` in a worker thread from a ``dup`` of stdin (sharing its
offset).  ``input()``'s own would-block is none: it blocks the thread.

Mode: the recipe opens a description of its own of stdin's file
(``/proc/self/fd/0``) with ``O_NONBLOCK`` and wraps that int fd: the mode
of the description stdin shares with the shell is never changed.

Caveats: the prompt is written with a plain ``sys.stdout.write`` and
``flush``, as ``input()`` does.  Lines are split on ``b"\\n"`` and then
decoded (stdin's encoding and error handler), so UTF-16 input is not
supported.  On a terminal, Ctrl-D ends one read (``lines()`` stops,
``ainput`` raises ``EOFError``) and the next one reads on, as ``input()``
does; a pipe's or a file's end is final.
Do not read ``sys.stdin`` itself meanwhile: the recipe's buffer would hide
lines from it, and it from the recipe.  No line editing or history (that is
readline's or prompt_toolkit's job).

Example::

    import asyncio
    from adapt.recipes.console import ainput, lines

    async def main():
        name = await ainput("name? ")
        print(f"hello {name}", flush=True)
        async for line in lines():          # until end of input
            print(f"got {line.rstrip()}", flush=True)

    asyncio.run(main())
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

from adapt import BufferedStream, reader

LIBRARY = None
SUMMARY = "Console input: await ainput(prompt) and async for line in lines() on stdin."


def _pollable(fd: int) -> bool:
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return False
    with select.epoll() as probe:
        try:
            probe.register(fd, select.EPOLLIN)
        except PermissionError:  # /dev/null and other devices that never block
            return False
    return True


class Console:
    """Lines from ``fd`` (stdin by default): ``await readline()``, ``async for``.

    Polled without a thread where ``fd`` is a terminal, pipe or FIFO; read in
    a worker thread where it is a regular file or a device that never blocks.
    """

    def __init__(self, fd: int = 0, *, encoding: str | None = None, errors: str | None = None):
        stdin: Any = sys.stdin
        self.encoding = encoding or getattr(stdin, "encoding", None) or "utf-8"
        self.errors = errors or getattr(stdin, "errors", None) or "strict"
        self._stream: BufferedStream | None = None
        if _pollable(fd):
            # a description of our own: O_NONBLOCK here touches nobody else
            own = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._stream = BufferedStream(own, limit=sys.maxsize)  # as sys.stdin: no limit
            self.threaded = False
        else:
            self._reader = reader(open(os.dup(fd), "rb"))  # noqa: SIM115 (the reader closes it)
            self.threaded = True

    async def readline(self) -> str:
        """One line, ``"\\n"`` included; ``""`` at the end of input."""
        if self._stream is not None:
            data = await self._stream.readline()
        else:
            data = await self._reader.readline()
        return data.decode(self.encoding, self.errors)

    def __aiter__(self) -> Console:
        return self

    async def __anext__(self) -> str:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        else:
            await self._reader.aclose()


_stdin: Console | None = None


def stdin() -> Console:
    """The process's stdin as a :class:`Console`, made on first use and kept."""
    global _stdin
    if _stdin is None:
        _stdin = Console(0)
    return _stdin


async def ainput(prompt: str = "") -> str:
    """``input(prompt)`` for async code: the line without its ``"\\n"``;
    ``EOFError`` at the end of input."""
    if prompt:
        sys.stdout.write(prompt)
        sys.stdout.flush()
    line = await stdin().readline()
    if not line:
        raise EOFError("end of input")
    return line[:-1] if line.endswith("\n") else line


def lines() -> AsyncIterator[str]:
    """``for line in sys.stdin`` for async code: each line with its ``"\\n"``."""
    return stdin()
