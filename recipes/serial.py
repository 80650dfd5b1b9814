"""pyserial ports: awaitable reads, lines and whole writes, without a thread.

Requires: pyserial >= 3.5 (``pip install pyserial``).

Platforms: Linux (any POSIX: pyserial's ``fileno()`` is the tty fd).

Adapts: a ``serial.Serial`` (:class:`AsyncSerial`, or :func:`open_serial`).
pyserial's would-block signal is ``read()`` returning ``b""`` with
``timeout=0``.  Underneath, that read is a zero-timeout ``select`` and an
``os.read`` of the fd (which pyserial opens ``O_NONBLOCK`` and keeps no
buffer for), and pyserial sets the tty's ``VMIN`` to 0, so a bare read of the
fd returns ``b""`` too -- which looks like the end of the stream.  The
recipe sets ``inter_byte_timeout=0`` (pyserial's own setting for ``VMIN=1``,
kept when other settings change): the fd's read then raises EAGAIN
(``BlockingIOError``, adapt's would-block) and the wait is ``read_with``.
Reads go through adapt's :class:`~adapt.BufferedStream` (``readline``,
``readuntil``, ``readexactly``, line iteration, one buffer).  Writes never
use ``Serial.write``: with ``write_timeout=0`` it spins on a full buffer,
otherwise it blocks the loop; ``write`` loops ``os.write`` on ``fileno()``
through ``write_with`` instead.  ``timeout=0`` stays set, so a stray
``ser.read()`` in async code cannot block either.

Mode: a ``serial.Serial`` is no kind adapt knows, so the recipe chooses
``nonblocking=True`` (pyserial opens the fd ``O_NONBLOCK`` already; the
choice keeps it so): with ``VMIN=1`` the fd says ``EAGAIN`` when empty.

Caveats: do not read or write the ``Serial`` object itself while it is
wrapped (the stream's buffer would be bypassed).  :meth:`AsyncSerial.flush`
(wait until the output is transmitted, ``tcdrain``) runs in a worker thread:
the kernel offers no readiness for it.  Modem lines, break and
``reset_input_buffer`` are the ``Serial`` object's own (sync, non-blocking)
calls: use ``ser`` (``.serial``) for them.

Example::

    import asyncio
    from adapt.recipes.serial import open_serial

    async def main():
        # PORT_A and PORT_B: the two ends of
        # socat pty,raw,echo=0,link=PORT_A pty,raw,echo=0,link=PORT_B
        async with open_serial(PORT_A, 115200) as a, open_serial(PORT_B, 115200) as b:
            await a.write(b"AT\\r\\nAT+GMR\\r\\n")
            assert await b.readline() == b"AT\\r\\n"
            assert await b.readuntil(b"\\r\\n") == b"AT+GMR\\r\\n"
            await b.write(b"OK\\r\\n")
            async for line in a:
                assert line == b"OK\\r\\n"
                break

    asyncio.run(main())
"""

from __future__ import annotations

import termios
from typing import Any

import serial

from adapt import Async, BufferedStream, run_sync

LIBRARY = "pyserial"
SUMMARY = "pyserial ports: awaitable reads, lines and whole writes, without a thread."


class AsyncSerial(BufferedStream):
    """A ``serial.Serial`` as a buffered async stream: ``read(n)``,
    ``readline()``, ``readuntil(sep)``, ``readexactly(n)``, ``async for
    line in port``, ``write(data)``.  Closing it closes the port."""

    def __init__(self, ser: serial.Serial, *, limit: int = 64 * 1024) -> None:
        if not ser.is_open:
            raise ValueError("the port is not open: call ser.open() or use open_serial()")
        ser.timeout = 0  # pyserial's own read() returns b"" instead of waiting
        ser.inter_byte_timeout = 0  # VMIN=1: the fd says EAGAIN when empty, not b""
        # (on an open port pyserial's setter skips a change of VMIN alone)
        attrs = termios.tcgetattr(ser.fileno())
        attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
        termios.tcsetattr(ser.fileno(), termios.TCSANOW, attrs)
        super().__init__(Async(ser, nonblocking=True), limit=limit)

    @property
    def serial(self) -> Any:
        """The ``serial.Serial`` object (for modem lines, break, settings)."""
        return self.get_ref()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` (``os.write`` on the fd, never ``Serial.write``)."""
        await self.write_all(data)

    async def flush(self) -> None:
        """Wait until everything written was transmitted (in a worker thread)."""
        await run_sync(self.serial.flush)


def open_serial(port: str, baudrate: int = 9600, **settings: Any) -> AsyncSerial:
    """``serial.Serial(port, baudrate, **settings)``, opened and wrapped."""
    return AsyncSerial(serial.Serial(port, baudrate, **settings))
