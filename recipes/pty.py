"""Drive interactive programs over a pty, expect-style, without a thread.

Requires: standard library; pexpect / ptyprocess objects are accepted too
(duck-typed: neither is imported).

Platforms: Linux.

Adapts: a pty master -- from ``os.openpty`` (:meth:`Pty.spawn`) or inside a
``pexpect.spawn`` / ``ptyprocess.PtyProcess`` (:meth:`Pty.adopt`) -- read
with ``os.read`` (would-block: ``BlockingIOError``) through an
:class:`adapt.BufferedStream`, which reads a master's ``EIO`` after the
child's exit as the end.  The libraries' own calls are avoided: ptyprocess's
``read`` raises a false ``EOFError`` on a non-blocking fd (and ``isalive()``
then blocks in ``waitpid``); pexpect's ``send`` sleeps ``delaybeforesend``
on the loop.  The exit is awaited through a pidfd (``waitid(P_PIDFD,
WNOHANG | WNOWAIT)`` returning ``None`` is the would-block); the owner
(``Popen`` / ``isalive()``) then reaps it without blocking.

Mode: the pty master is an int fd (a kind adapt knows), made non-blocking
by ``Async``; the pidfd is wrapped with ``nonblocking=False`` (``waitid``
with ``WNOHANG`` never blocks).

Caveats: timeouts are the caller's (``asyncio.timeout``,
``trio.move_on_after``); a cancelled ``expect`` keeps what it read.
:meth:`Pty.spawn` gives the child no controlling terminal (``^C`` is a plain
byte).  Patterns are bytes; the pty turns ``\\n`` into ``\\r\\n`` and echoes
input.  :meth:`Pty.aclose` gives an adopted object back blocking and open,
and waits for a spawned child that ignores SIGHUP (as under ``nohup``): kill
such a child first.

Example::

    import asyncio
    from adapt.recipes.pty import Pty

    async def main():
        async with Pty.spawn("bc", "-q") as bc:
            await bc.sendline("2^64")
            match = await bc.expect(rb"\\n(\\d+)\\r\\n")  # the line after the echo
            print(int(match[1]))
            await bc.sendline("quit")
            print("exit status", await bc.wait())

    asyncio.run(main())
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from typing import Any, Self

from adapt import Async, BufferedStream, WouldBlock

__all__ = ["LIBRARY", "SUMMARY", "Pty"]

LIBRARY = None
SUMMARY = "Drive interactive programs over a pty, expect-style, without a thread."


def _exited(pidfd: int) -> None:
    if os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        raise WouldBlock  # still running


class Pty:
    """An expect-style session over a pty master."""

    def __init__(self, master: Any, pid: int, reap: Callable[[], int], owned: bool) -> None:
        self.stream = BufferedStream(master)
        self.pid = pid
        self._reap = reap
        self._owned = owned
        self._exit = Async(os.pidfd_open(pid), nonblocking=False)
        self._buf = b""
        self.before = b""  # what came before the last match (or the end)
        self.returncode: int | None = None

    @classmethod
    def spawn(cls, *argv: str, env: dict[str, str] | None = None, cwd: str | None = None) -> Self:
        """Start ``argv`` on a new pty (``TERM=dumb`` unless ``env`` says)::

        child = pexpect.spawn("bc", ["-q"])         # sync
        child = Pty.spawn("bc", "-q")               # async
        """
        master, slave = os.openpty()
        try:
            popen = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                env={**os.environ, "TERM": "dumb"} if env is None else env,
                cwd=cwd,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(master, popen.pid, popen.wait, owned=True)

    @classmethod
    def adopt(cls, child: Any) -> Self:
        """Drive a ``pexpect.spawn`` or ``ptyprocess.PtyProcess`` (unbuffered
        bytes) already started; data pexpect had buffered is kept."""
        proc = getattr(child, "ptyproc", child)  # pexpect.spawn wraps a PtyProcess

        def reap() -> int:
            proc.isalive()  # the child has exited: its waitpid returns at once
            return int(proc.exitstatus if proc.signalstatus is None else -proc.signalstatus)

        session = cls(Async(proc.fd), proc.pid, reap, owned=False)
        pending = getattr(child, "buffer", b"")
        session._buf = pending if isinstance(pending, bytes) else pending.encode()
        return session

    async def send(self, data: bytes | str) -> None:
        """Write all of ``data`` to the program (no delay, unlike pexpect)."""
        await self.stream.write_all(data.encode() if isinstance(data, str) else data)

    async def sendline(self, line: bytes | str = b"") -> None:
        """Write ``line`` and a newline."""
        await self.send((line.encode() if isinstance(line, str) else line) + b"\n")

    async def expect(self, pattern: bytes | re.Pattern[bytes]) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) matches; consume through the match.

        ``before`` holds what came before it.  At the end of the output,
        raises ``EOFError`` (``before`` then holds what was left)::

            child.expect(r"\\d+")                   # sync (pexpect)
            match = await session.expect(rb"\\d+")   # async
        """
        regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        while True:
            match = regex.search(self._buf)
            if match is not None:
                self.before, self._buf = self._buf[: match.start()], self._buf[match.end() :]
                return match
            chunk = await self.stream.read(65536)
            if not chunk:
                self.before, self._buf = self._buf, b""
                raise EOFError(f"the program's output ended before {regex.pattern!r}")
            self._buf += chunk

    async def expect_exact(self, text: bytes) -> re.Match[bytes]:
        """:meth:`expect` for a literal string."""
        return await self.expect(re.escape(text))

    async def read_to_end(self) -> bytes:
        """Everything up to the end of the output (the child closed the pty)."""
        rest, self._buf = self._buf + await self.stream.read(), b""
        return rest

    async def wait(self) -> int:
        """Wait for the exit through a pidfd; the status (negative: a signal)."""
        if self.returncode is None:
            await self._exit.read_with(_exited)
            self.returncode = self._reap()
        return self.returncode

    async def aclose(self) -> None:
        """Spawned: close the pty, send SIGHUP if the child still runs, wait.
        Adopted: give the pty back, blocking and open."""
        try:
            if self._owned:
                await self.stream.aclose()
                if self.returncode is None:
                    try:
                        _exited(self._exit.fileno())
                    except WouldBlock:  # not a controlling tty: no SIGHUP came
                        signal.pidfd_send_signal(self._exit.fileno(), signal.SIGHUP)
                    await self.wait()
            else:
                self.stream.wrapper.into_inner()
        finally:
            await self._exit.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
