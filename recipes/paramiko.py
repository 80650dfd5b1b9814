"""Remote commands over SSH with paramiko: stream stdout and stderr, feed stdin.

Requires: paramiko 3.5 (``pip install paramiko``).

Platforms: Linux (any platform adapt runs on).

Adapts: a ``paramiko.Channel`` running a command (``exec_command``).  Its
``fileno()`` is the read end of a pipe that paramiko sets while stdout or
stderr data is buffered and after EOF -- readable, never writable -- and its
would-block signal is ``recv_ready()`` / ``recv_stderr_ready()`` /
``send_ready()`` being False.  Reads run in the awaiting task: the op reads
the stream asked for, and moves data of the *other* stream into the
recipe's buffer, because while it sits in paramiko's buffer the pipe stays
readable and a stdout read would spin on stderr-only output.  Writes send
what the window allows in the task; a shut window is waited for on
paramiko's own condition in a worker thread, 0.1 s at a time (the pipe
never says when it opens).  ``write_with`` on the channel is no
alternative: adapt refuses a wait for a read-only pipe to become writable,
and ``write_with(op, wait="readable")`` would wake only when output
arrives, not when the window opens.  The channel is wrapped with
``nonblocking=False``: it has ``settimeout()`` but is no socket, and a
timeout of 0 would make paramiko's blocking calls in other threads fail at
once.

Mode: a ``Channel`` is no kind adapt knows (it has ``settimeout()`` but is
no socket): the recipe wraps it with ``nonblocking=False``.

Caveats: paramiko runs its own transport thread; connecting,
authenticating and opening the channel (``exec_command``) wait for it, so
they run in a worker thread (:func:`adapt.run_sync`); a cancelled
``connect()`` returns at once and closes the client.  A write waiting for
the window is cancelled at once, having sent nothing.  Output of the stream
nobody reads is kept in memory (paramiko's window would otherwise stall the
command).  Waiting for the exit status after EOF polls paramiko's status
event from a worker thread in 0.1 s steps (paramiko signals nothing on the
pipe for it).

Example::

    import asyncio
    import paramiko
    from adapt.recipes.paramiko import connect, exec_command

    async def main():
        # `host`, `port`, `user` and `key_filename` name an SSH server that
        # accepts the key (the test starts sshd)
        # (a test server: its host key is trusted on first use)
        client = await connect(host, port, user, key_filename=key_filename,
                               policy=paramiko.AutoAddPolicy())
        proc = await exec_command(client, "read line; echo got $line; echo oops >&2")
        await proc.write_all(b"hello\\n")
        print(await proc.read_all(), await proc.read_all(stderr=True))
        print(await proc.wait())
        proc.close()
        client.close()

    asyncio.run(main())
"""

from __future__ import annotations

from typing import Any

import paramiko

from adapt import Async, WouldBlock, run_sync

__all__ = ["LIBRARY", "SUMMARY", "Process", "connect", "exec_command"]

LIBRARY = "paramiko"
SUMMARY = "Remote commands over SSH with paramiko: stream stdout and stderr, feed stdin."


async def connect(host: str, port: int = 22, user: str | None = None, **kwargs: Any) -> Any:
    """``SSHClient.connect`` in a worker thread; returns the ``SSHClient``.

    The host key policy is ``RejectPolicy`` unless ``policy=`` says otherwise
    (load known hosts with ``client.load_system_host_keys()`` first, or pass
    ``policy=paramiko.AutoAddPolicy()`` where that is safe)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(kwargs.pop("policy", paramiko.RejectPolicy()))
    kwargs.setdefault("allow_agent", False)
    kwargs.setdefault("look_for_keys", False)
    try:
        # cancelled: return at once; closing the client ends the thread's call
        await run_sync(lambda: client.connect(host, port, user, **kwargs), abandon_on_cancel=True)
    except BaseException:
        client.close()
        raise
    return client


async def exec_command(client: paramiko.SSHClient, command: str) -> Process:
    """Open a session channel and start ``command`` (in a worker thread)."""

    def start() -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None:
            raise paramiko.SSHException("the client is not connected")
        chan = transport.open_session()
        try:
            chan.exec_command(command)
        except BaseException:
            chan.close()
            raise
        return chan

    return Process(await run_sync(start))


def _window_opens(chan: paramiko.Channel, timeout: float) -> None:
    """Wait at most ``timeout`` seconds for ``chan``'s send window to open."""
    with chan.out_buffer_cv:  # paramiko's own lock and notice for it
        if not (chan.out_window_size or chan.closed or chan.eof_sent):
            chan.out_buffer_cv.wait(timeout)


class Process:
    """A remote command's channel (``chan``)::

    out = chan.recv(4096)                   # sync
    out = await proc.read(4096)             # async
    """

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan
        self._async = Async(chan, nonblocking=False)  # leave paramiko's timeout alone
        self._held = (bytearray(), bytearray())  # stdout, stderr read aside

    def _take(self, n: int, stderr: bool) -> bytes:
        chan, held = self.chan, self._held[stderr]
        if not held:
            # EOF first: paramiko's thread buffers the last data before it
            # marks EOF, so data can arrive between the two looks, not after
            eof = chan.eof_received or chan.closed
            if (chan.recv_stderr_ready if stderr else chan.recv_ready)():
                return (chan.recv_stderr if stderr else chan.recv)(n)
            self._hold_other(stderr)
            if eof:
                return b""
            raise WouldBlock
        data = bytes(held[:n])
        del held[:n]
        return data

    def _hold_other(self, stderr: bool) -> None:
        """Move the other stream's buffered data aside: it keeps the fd readable."""
        chan = self.chan
        ready, recv = (
            (chan.recv_ready, chan.recv)
            if stderr
            else (
                chan.recv_stderr_ready,
                chan.recv_stderr,
            )
        )
        while ready():
            self._held[not stderr].extend(recv(65536))

    async def read(self, n: int = 65536, *, stderr: bool = False) -> bytes:
        """Up to ``n`` bytes of stdout (or stderr); ``b""`` at EOF."""
        return await self._async.read_with(lambda _: self._take(n, stderr))

    async def read_all(self, *, stderr: bool = False) -> bytes:
        """Everything until EOF."""
        out = bytearray()
        while chunk := await self.read(stderr=stderr):
            out += chunk
        return bytes(out)

    async def write(self, data: bytes) -> int:
        """Send what the window allows (waiting while it is shut)."""
        chan = self.chan
        while not chan.send_ready():
            # paramiko signals an opened window on a condition only: wait for
            # it in a worker thread, 0.1 s at a time; the wait changes
            # nothing, so a cancellation abandons it at once
            await run_sync(_window_opens, chan, 0.1, abandon_on_cancel=True)
        return chan.send(data)

    async def write_all(self, data: bytes) -> None:
        """Send all of ``data``."""
        view = memoryview(data)
        while view:
            # one packet goes per send (32 KiB): hand over no more than two
            view = view[await self.write(view[:65536].tobytes()) :]

    def close_stdin(self) -> None:
        """Send EOF to the command (``chan.shutdown_write()``)."""
        self.chan.shutdown_write()

    async def wait(self) -> int:
        """The command's exit status; unread output is kept for ``read``."""
        chan = self.chan

        def status(_: object) -> int | None:
            if chan.exit_status_ready():
                return chan.recv_exit_status()
            self._hold_other(False)  # keep the fd from staying readable
            self._hold_other(True)
            if chan.eof_received or chan.closed:
                return None  # the fd stays readable from now on: poll the event
            raise WouldBlock

        while (code := await self._async.read_with(status)) is None:
            await run_sync(chan.status_event.wait, 0.1)
        return code

    def close(self) -> None:
        """Deregister and close the channel."""
        self._async.into_inner()
        self.chan.close()
