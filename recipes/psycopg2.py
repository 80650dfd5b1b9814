"""PostgreSQL queries, COPY, notifications and cancellation with psycopg2.

Requires: psycopg2 2.9.5 (``pip install psycopg2-binary``, or ``psycopg2``).

Platforms: Linux (any platform adapt runs on).

Adapts: psycopg2's asynchronous connections (``connect(..., async_=1)``).
Their would-block signal is ``conn.poll()``'s answer: ``POLL_READ`` or
``POLL_WRITE`` (wait for that direction, then poll again) until ``POLL_OK``;
the recipe raises :class:`adapt.WantRead` / :class:`adapt.WantWrite` for
them, so ``Async(conn).read_with`` waits in the direction libpq asks for.
:func:`connect` waits on a fresh wrapper of ``conn.fileno()`` for each step:
with a multi-host DSN libpq closes its socket mid-connect and opens another,
often on the same fd number.  :class:`Database` runs queries (``execute``,
``fetchall``), turns ``LISTEN`` into an async iterator (``notifications``)
and cancels a query on the server when its task is cancelled
(``conn.cancel()``, then a drain, so the connection stays usable).
psycopg2 refuses ``COPY`` on asynchronous connections, so
:meth:`Database.copy_expert` runs psycopg2's own ``copy_expert`` on a
second, ordinary connection in a worker thread (:func:`adapt.run_sync`).

Mode: a psycopg2 connection is no kind adapt knows, and libpq keeps its
socket non-blocking itself: the recipe wraps it with ``nonblocking=False``.

Caveats: that ``COPY`` runs in a session of its own (it does not see the
async connection's uncommitted changes or ``TEMP`` tables, and commits at
once), and once started it runs to its end even if its task is cancelled.
``with conn:`` transactions and ``executemany`` are refused on asynchronous
connections.  A ``COPY`` that is not the first statement of a
multi-statement string is refused too, but only after libpq has entered it:
the connection is closed.  The cancellation propagates once the clean-up
has ended, at most ``cancel_timeout`` seconds (default 5) later: the
clean-up runs under :class:`adapt.on_cancel`, so the loop keeps running
meanwhile (``PQcancel``, a blocking call, goes to a worker thread, and the
drain waits like a query); a server that does not answer in time gets its
connection closed.  Autocommit is always on (psycopg2's rule for async
connections): run ``BEGIN`` / ``COMMIT`` yourself.

Example::

    import asyncio
    import io
    from adapt.recipes.psycopg2 import connect

    async def main():
        # `dsn` names a PostgreSQL server (the test starts one)
        db = await connect(dsn)
        rows = await db.fetchall("SELECT %s + 1", (41,))
        print(rows)
        out = io.StringIO()
        await db.copy_expert("COPY (VALUES (1, 'a'), (2, NULL)) TO STDOUT", out)
        print(repr(out.getvalue()))
        await db.execute("LISTEN jobs")
        await db.execute("NOTIFY jobs, 'hello'")
        async for note in db.notifications():
            print(note.channel, note.payload)
            break
        db.close()

    asyncio.run(main())
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions as ext

from adapt import Async, WantRead, WantWrite, WouldBlock, on_cancel, run_sync

__all__ = ["LIBRARY", "SUMMARY", "Database", "Notifications", "connect"]

LIBRARY = "psycopg2-binary"
SUMMARY = "PostgreSQL queries, COPY, notifications and cancellation with psycopg2."


def _step(conn: ext.connection) -> None:
    """One ``poll()``: done, or the direction libpq waits for."""
    state = conn.poll()
    if state == ext.POLL_OK:
        return
    if state == ext.POLL_READ:
        raise WantRead
    if state == ext.POLL_WRITE:
        raise WantWrite
    raise psycopg2.OperationalError(f"conn.poll() returned {state}")


async def connect(dsn: str = "", *, cancel_timeout: float = 5.0, **kwargs: Any) -> Database:
    """Connect without blocking the loop::

    conn = psycopg2.connect(dsn)                 # sync
    db = await connect(dsn)                      # async; db.conn is the connection
    """
    conn: ext.connection = psycopg2.connect(dsn, async_=1, **kwargs)
    try:
        while True:
            state = conn.poll()
            if state == ext.POLL_OK:
                blocking = functools.partial(psycopg2.connect, dsn, **kwargs)
                return Database(conn, cancel_timeout, connect_blocking=blocking)
            # the fd may be new (another host of the DSN): wrap it for this
            # one wait and unwrap it before libpq may close it
            step = Async(conn.fileno(), nonblocking=False)
            try:
                await (step.readable() if state == ext.POLL_READ else step.writable())
            finally:
                step.into_inner()
    except BaseException:
        conn.close()
        raise


def _is_copy(conn: ext.connection, sql: Any) -> bool:
    """Whether the statement starts with ``COPY`` (comments skipped)."""
    text = sql if isinstance(sql, str) else sql.as_string(conn)  # psycopg2.sql
    while True:
        text = text.lstrip()
        if text.startswith("--"):
            text = text.partition("\n")[2]
        elif text.startswith("/*"):
            text = text.partition("*/")[2]
        else:
            return text[:4].upper() == "COPY" and not text[4:5].isidentifier()


def _drain(conn: ext.connection) -> None:
    """``_step`` until the query has ended, by its result or by an error
    (``QueryCanceled``, or its own): either way the connection is idle."""
    try:
        _step(conn)
    except psycopg2.Error:
        if conn.closed:
            raise


def _copy(connect_blocking: Callable[[], ext.connection], sql: str, file: Any, size: int) -> int:
    conn = connect_blocking()
    try:
        conn.autocommit = True  # as on the async connection
        with conn.cursor() as cursor:
            cursor.copy_expert(sql, file, size)
            return cursor.rowcount
    finally:
        conn.close()


def _next_notify(conn: ext.connection) -> ext.Notify:
    _step(conn)  # reads what arrived; raises WantRead while idle
    if not conn.notifies:
        raise WouldBlock
    return conn.notifies.pop(0)


class Notifications:
    """An async iterator of a connection's notifications (a plain object,
    not an async generator: breaking out of ``async for`` leaves nothing to
    finalize)."""

    def __init__(self, wrapper: Async[ext.connection]) -> None:
        self._wrapper = wrapper

    def __aiter__(self) -> Notifications:
        return self

    async def __anext__(self) -> ext.Notify:
        return await self._wrapper.read_with(_next_notify)


class Database:
    """An open asynchronous connection (``conn``) and its wrapper.

    ``connect_blocking`` opens an ordinary connection to the same database,
    for :meth:`copy_expert` (:func:`connect` passes it).
    """

    def __init__(
        self,
        conn: ext.connection,
        cancel_timeout: float = 5.0,
        *,
        connect_blocking: Callable[[], ext.connection] | None = None,
    ) -> None:
        self.conn = conn
        self.cancel_timeout = cancel_timeout
        self.connect_blocking = connect_blocking
        # libpq keeps its socket non-blocking itself: adapt must not touch it
        self._wrapper = Async(conn, nonblocking=False)

    async def execute(self, sql: str, params: Any = None) -> ext.cursor:
        """Run one statement; returns the cursor with its results::

        cur.execute(sql, params)                 # sync
        cur = await db.execute(sql, params)      # async
        """
        if _is_copy(self.conn, sql):
            # psycopg2 would send it, then could neither feed nor drain it
            raise psycopg2.ProgrammingError("COPY on an async connection: use db.copy_expert()")
        cursor = self.conn.cursor()
        cursor.execute(sql, params)
        # cancelled mid-query: stop it on the server too (see _cancel)
        async with on_cancel(self._cancel, timeout=self.cancel_timeout):
            try:
                await self._wrapper.read_with(_step)
            except psycopg2.ProgrammingError:
                # a COPY further on in a multi-statement string: libpq stays
                # in it, and psycopg2 offers no way out on this connection
                if self.conn.info.transaction_status == ext.TRANSACTION_STATUS_ACTIVE:
                    self.close()
                raise
        return cursor

    async def fetchall(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """``execute`` then ``fetchall()`` (the rows are already here)."""
        return (await self.execute(sql, params)).fetchall()

    async def copy_expert(self, sql: str, file: Any, size: int = 8192) -> int:
        """``COPY ... FROM STDIN`` (reads ``file``) or ``COPY ... TO STDOUT``
        (writes it) on an ordinary connection in a worker thread; returns
        the number of rows copied::

        cur.copy_expert(sql, file)                     # sync
        rows = await db.copy_expert(sql, file)         # async
        """
        if self.connect_blocking is None:
            raise ValueError(
                "copy_expert() needs an ordinary connection to the same database: "
                "open the Database with connect(), or pass Database(..., connect_blocking=)"
            )
        return await run_sync(_copy, self.connect_blocking, sql, file, size)

    def notifications(self) -> Notifications:
        """The ``NOTIFY`` messages of the channels this connection ``LISTEN``s to::

        conn.poll(); conn.notifies.pop(0)     # sync, after select() said readable
        async for note in db.notifications(): ...
        """
        return Notifications(self._wrapper)

    async def _cancel(self) -> None:
        # Send the server a cancel request, then read the query's end (an
        # error, or its result if it finished first) so the next query finds
        # the connection idle.  Run by on_cancel: protected from the task's
        # cancellation, cut short at cancel_timeout -- then, or if anything
        # fails, the connection is out of step with the server and closed.
        conn = self.conn
        if not conn.isexecuting():
            return  # the result arrived with the cancellation: nothing to stop
        try:
            await run_sync(conn.cancel)  # PQcancel blocks: a worker thread
            await self._wrapper.read_with(_drain)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Deregister and close the connection (idempotent)."""
        if not self._wrapper.closed:
            self._wrapper.into_inner()
        self.conn.close()
