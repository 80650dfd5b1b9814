"""Child processes with async pipes, waited for through a pidfd, no thread.

Requires: standard library (``subprocess``; ``os.pidfd_open``: Linux 5.3).

Platforms: Linux.

Adapts: ``subprocess.Popen``.  Its pipes become
:class:`adapt.BufferedStream` objects (would-block: ``BlockingIOError``).
The exit is awaited through a pidfd, readable once the child exits; then
``Popen.poll()`` -- whose would-block is returning ``None`` -- reaps it.
Signals go through the pidfd too, never to a recycled pid.
:meth:`Process.communicate` feeds stdin while it drains stdout and stderr
from one task (an epoll set of the pipes, itself awaited): no deadlock.

Mode: the pipes (unbuffered ``io.FileIO``) are kinds adapt knows and are
made non-blocking; the pidfd and the epoll set are wrapped with
``nonblocking=False`` (their ops never block).  The pipes are enlarged to
``PIPE_SIZE`` (1 MiB, the most an unprivileged process may ask for; kept
as is where refused): 16 times fewer wake-ups per MiB than 64 KiB pipes.

Caveats: pipes are unbuffered (``bufsize=0``; a ``BufferedReader``'s
``read1()`` returns ``b""`` before data arrives) and bytes (decode the
lines).  Leaving ``async with`` closes the pipes and waits for the exit, as
``Popen`` does: kill first if the child may not end by itself.

Example::

    import asyncio, sys
    from adapt.recipes.subprocess import spawn

    async def main():
        code = "import sys\\nfor line in sys.stdin: print(line.strip().upper())"
        async with spawn(sys.executable, "-c", code) as child:
            await child.stdin.write_all(b"hello\\nworld\\n")
            child.stdin.close()
            async for line in child.stdout:
                print(line)
            print("exit status", await child.wait())

    asyncio.run(main())
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
from typing import Any, Self, cast

from adapt import Async, BufferedStream, WouldBlock

LIBRARY = None
SUMMARY = "Child processes with async pipes, waited for through a pidfd, no thread."

PIPE, STDOUT, DEVNULL = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL
PIPE_SIZE = 1 << 20


def _stream(pipe: Any) -> BufferedStream | None:
    if pipe is None:
        return None
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # over the user's pipe quota: the pipe keeps its size
    return BufferedStream(pipe)


class Process:
    """A running child: ``stdin`` / ``stdout`` / ``stderr`` streams (or None)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._exit = Async(os.pidfd_open(popen.pid), nonblocking=False)
        try:
            self.stdin = _stream(popen.stdin)
            self.stdout = _stream(popen.stdout)
            self.stderr = _stream(popen.stderr)
        except BaseException:
            self._exit.close()  # the pidfd; spawn() closes the pipes
            raise

    @property
    def returncode(self) -> int | None:
        """The exit status once :meth:`wait` saw it (negative: killed by a signal)."""
        return self.popen.returncode

    def _reap(self, _: int) -> int:
        status = self.popen.poll()
        if status is None:
            raise WouldBlock  # still running (or the pidfd woke us early)
        return status

    async def wait(self) -> int:
        """``popen.wait()``, awaited: the pidfd is readable once the child exits."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        return await self._exit.read_with(self._reap)

    def send_signal(self, sig: int) -> None:
        """Signal the child through its pidfd; a no-op once it was reaped."""
        if self.popen.returncode is None:
            signal.pidfd_send_signal(self._exit.fileno(), sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    async def communicate(self, data: bytes = b"") -> tuple[bytes, bytes]:
        """Write ``data`` to stdin and close it, read stdout and stderr to the
        end, wait for the exit; returns ``(stdout, stderr)`` (b"" for no pipe)."""
        out: dict[int, list[bytes]] = {}
        todo = memoryview(data)
        with select.epoll() as poller:
            for stream in (self.stdout, self.stderr):
                if stream is not None:
                    out[stream.wrapper.fileno()] = [await stream.read(stream.buffered)]
                    poller.register(stream.wrapper.fileno(), select.EPOLLIN)
            if self.stdin is not None and todo:
                poller.register(self.stdin.wrapper.fileno(), select.EPOLLOUT)
            elif self.stdin is not None:
                self.stdin.close()
            watching = len(out) + (1 if todo and self.stdin is not None else 0)
            async with Async(poller, nonblocking=False) as ready:
                while watching:
                    for fd, _ in await ready.read_with(_events):
                        try:
                            if fd in out:
                                out[fd].append(os.read(fd, 65536))
                                finished = not out[fd][-1]  # the end of an output
                            else:
                                todo = todo[os.write(fd, todo[:65536]) :]
                                finished = not todo  # all input written
                        except BlockingIOError:
                            continue  # a spurious event: epoll will report it again
                        except BrokenPipeError:
                            finished = True  # the child stopped reading: like Popen, go on
                        if finished:
                            poller.unregister(fd)
                            watching -= 1
                            if fd not in out and self.stdin is not None:
                                self.stdin.close()
        await self.wait()
        stdout, stderr = (
            b"".join(out[s.wrapper.fileno()]) if s else b"" for s in (self.stdout, self.stderr)
        )
        return stdout, stderr

    async def aclose(self) -> None:
        """Close the pipes, wait for the exit, release the pidfd."""
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                await stream.aclose()
        try:
            await self.wait()
        finally:
            await self._exit.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _events(poller: select.epoll) -> list[tuple[int, int]]:
    events = poller.poll(0)
    if not events:
        raise WouldBlock
    return events


def spawn(*args: str | os.PathLike[str], **popen_kwargs: Any) -> Process:
    """Start a child with piped stdin, stdout and stderr (override any with
    ``stdin=``/``stdout=``/``stderr=``: ``None``, ``DEVNULL``, ``STDOUT``...)::

        child = subprocess.Popen(args, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        child = spawn(*args)
    """
    textual = ("text", "universal_newlines", "encoding", "errors")
    if [name for name in textual if popen_kwargs.pop(name, None)]:
        raise ValueError("spawn() gives bytes streams: decode the lines instead of text=True")
    if popen_kwargs.setdefault("bufsize", 0) != 0:
        raise ValueError("spawn() needs unbuffered pipes (bufsize=0)")
    for name in ("stdin", "stdout", "stderr"):
        popen_kwargs.setdefault(name, PIPE)
    # bytes: text, universal_newlines, encoding and errors were refused above (the
    # checkers cannot tell which Popen overload **popen_kwargs selects)
    popen: subprocess.Popen[bytes] = cast(Any, subprocess.Popen)(args, **popen_kwargs)
    try:
        return Process(popen)
    except BaseException:
        popen.kill()
        popen.wait()
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()
        raise
