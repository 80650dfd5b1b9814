"""Exceptions raised and understood by adapt."""

from __future__ import annotations

__all__ = [
    "ClosedResourceError",
    "WantRead",
    "WantWrite",
    "WouldBlock",
]

#: Direction constants shared by the core and the backends.
READ = 0
WRITE = 1


class WouldBlock(Exception):
    """Raised by an ``op`` to say "not now": wait, then call me again.

    ``read_with`` waits until the object is readable, ``write_with`` until it
    is writable.  Use :class:`WantRead` / :class:`WantWrite` to wait in a
    specific direction regardless of which method is running the op.

    Example::

        def op(conn):
            item = conn.poll_item()      # returns None when nothing is queued
            if item is None:
                raise adapt.WouldBlock
            return item

        item = await Async(conn).read_with(op)
    """

    #: ``None`` means "the direction of the method that ran the op".
    direction: int | None = None


class WantRead(WouldBlock):
    """The op must wait until the object is *readable* before trying again.

    Example: an SSL write that needs to read a renegotiation message first::

        await Async(tls).write_with(op)    # op raises WantRead -> waits readable
    """

    direction = READ


class WantWrite(WouldBlock):
    """The op must wait until the object is *writable* before trying again.

    Example: libpq's ``poll()`` returning POLL_WRITE during a read::

        if state == psycopg2.extensions.POLL_WRITE:
            raise adapt.WantWrite
    """

    direction = WRITE


class ClosedResourceError(Exception):
    """The :class:`~adapt.Async` wrapper was closed (or closed while waiting).

    Raised by every operation started after ``aclose()`` / ``close()`` /
    ``into_inner()``, and delivered to every task that was waiting on the
    object when it was closed::

        async with Async(sock) as a:
            ...
        await a.recv(10)       # ClosedResourceError: the wrapper is closed
    """
