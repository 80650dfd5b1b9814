"""The psycopg2 recipe against a real PostgreSQL 15 server, on every loop."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import psycopg2
import psycopg2.extensions as ext
import pytest
from adapt.recipes import psycopg2 as recipe
from adapt.recipes.psycopg2 import Database, connect

from adapt import Async, run_sync

from ._example import example_main
from .servers import Postgres, free_port

T = TypeVar("T")


def _activity(pg: Postgres, pid: int, condition: str, *params: object) -> bool:
    """Whether server process ``pid`` matches ``condition`` in
    ``pg_stat_activity`` right now (checked over an ordinary blocking
    connection).  Only that process: one an earlier test closed
    mid-statement may sleep on for a while."""
    with psycopg2.connect(pg.dsn) as check, check.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND {condition}", (pid, *params)
        )
        row = cur.fetchone()
    check.close()
    assert row is not None
    return bool(row[0])


def _sleeping(pg: Postgres, pid: int) -> int:
    """Whether server process ``pid`` is running pg_sleep right now, 1 or 0."""
    return int(_activity(pg, pid, "query LIKE 'SELECT pg_sleep%%' AND state = 'active'"))


async def _until_sleeping(pg: Postgres, pid: int, n: int) -> None:
    with anyio.fail_after(10):
        while _sleeping(pg, pid) != n:
            await anyio.sleep(0.02)


async def test_example(
    backend: str, postgres: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    await example_main(recipe, dsn=postgres.dsn)()
    assert capsys.readouterr().out == "[(42,)]\n'1\\ta\\n2\\t\\\\N\\n'\njobs hello\n"


async def test_queries_errors_and_types(backend: str, postgres: Postgres) -> None:
    db = await connect(postgres.dsn)
    try:
        await db.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text)")
        await db.execute("INSERT INTO t VALUES (%s, %s), (%s, %s)", (1, "a", 2, "b"))
        assert await db.fetchall("SELECT * FROM t ORDER BY id") == [(1, "a"), (2, "b")]
        with pytest.raises(psycopg2.errors.UniqueViolation):
            await db.execute("INSERT INTO t VALUES (1, 'again')")
        with pytest.raises(psycopg2.errors.SyntaxError):
            await db.execute("SELEC 1")
        # still usable after errors
        rows = await db.fetchall("SELECT count(*) FROM generate_series(1, 100000)")
        assert rows == [(100000,)]
    finally:
        db.close()


async def test_concurrent_connections_overlap(backend: str, postgres: Postgres) -> None:
    dbs = [await connect(postgres.dsn) for _ in range(4)]
    try:
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for db in dbs:
                tg.start_soon(db.execute, "SELECT pg_sleep(0.3)")
        assert time.monotonic() - start < 1.0  # 4 x 0.3 s would be 1.2 s in series
    finally:
        for db in dbs:
            db.close()


async def test_multi_host_dsn_whose_first_host_refuses(backend: str, postgres: Postgres) -> None:
    # libpq closes the refused socket mid-connect and opens a new one, often
    # on the same fd number: each wait must see the fd as it is now
    dead = free_port()
    dsn = f"host=127.0.0.1,127.0.0.1 port={dead},{postgres.port} user=postgres dbname=postgres"
    with anyio.fail_after(10):
        db = await connect(dsn)
    try:
        assert db.conn.info.port == postgres.port
        assert await db.fetchall("SELECT 1") == [(1,)]
    finally:
        db.close()


async def test_one_wrapper_across_libpqs_socket_swap(backend: str, postgres: Postgres) -> None:
    # libpq closes the refused socket inside poll() and opens the next one,
    # here on the same fd number, under a live wrapper of the connection:
    # the core registers the fd only while a task waits, so the wait after
    # the swap watches the new socket (before, asyncio and uvloop hung).
    dead = free_port()
    dsn = f"host=127.0.0.1,127.0.0.1 port={dead},{postgres.port} user=postgres dbname=postgres"
    conn = psycopg2.connect(dsn, async_=1)
    wrapper = Async(conn, nonblocking=False)
    try:
        first = conn.fileno()
        with anyio.fail_after(10):
            await wrapper.read_with(recipe._step)
        assert conn.fileno() == first  # the same number, another socket
        assert conn.info.port == postgres.port
    finally:
        wrapper.into_inner()
        conn.close()


async def test_connect_failure_is_an_error(backend: str, postgres: Postgres) -> None:
    with pytest.raises(psycopg2.OperationalError, match="refused"):
        await connect(f"host=127.0.0.1 port={free_port()} user=postgres connect_timeout=5")


async def test_plain_read_with_leaves_a_cancelled_query_running(
    backend: str, postgres: Postgres
) -> None:
    # What the recipe fixes: a cancelled wait consumes nothing, but the
    # query goes on on the server and the connection is still busy with it.
    db = await connect(postgres.dsn)
    pid = db.conn.get_backend_pid()
    plain = Async(db.conn, nonblocking=False)
    try:
        cursor = db.conn.cursor()
        with anyio.move_on_after(0.3):
            cursor.execute("SELECT pg_sleep(10)")
            await plain.read_with(recipe._step)
        await _until_sleeping(postgres, pid, 1)  # still running on the server
        with pytest.raises(psycopg2.ProgrammingError, match="underway"):
            db.conn.cursor().execute("SELECT 1")
    finally:
        plain.into_inner()
        db.close()
    # the server sleeps on after the close (until pg_sleep ends, or it next
    # writes to the closed connection): end it rather than wait 10 s
    with psycopg2.connect(postgres.dsn) as admin, admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    await _until_sleeping(postgres, pid, 0)


async def _cancelled_under_every_scope(db: Database, backend: str) -> None:
    """Cancel a long query in each way the loop offers."""
    with anyio.move_on_after(0.2):  # a trio/anyio cancel scope
        await db.execute("SELECT pg_sleep(10)")
    if backend == "trio":
        return
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await db.execute("SELECT pg_sleep(10)")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(db.execute("SELECT pg_sleep(10)"), 0.2)
    task = asyncio.ensure_future(db.execute("SELECT pg_sleep(10)"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancellation_stops_the_query_and_keeps_the_connection(
    backend: str, postgres: Postgres
) -> None:
    db = await connect(postgres.dsn)
    try:
        start = time.monotonic()
        await _cancelled_under_every_scope(db, backend)
        assert time.monotonic() - start < 5  # none of them waited for pg_sleep(10)
        assert (
            _sleeping(postgres, db.conn.get_backend_pid()) == 0
        )  # cancelled on the server, at once
        assert await db.fetchall("SELECT 1") == [(1,)]
        assert db.conn.status == ext.STATUS_READY
    finally:
        db.close()


async def test_notifications_from_another_connection(backend: str, postgres: Postgres) -> None:
    listener, sender = await connect(postgres.dsn), await connect(postgres.dsn)
    try:
        await listener.execute("LISTEN events")
        got: list[str] = []

        async def listen() -> None:
            async for note in listener.notifications():
                got.append(note.payload)
                if len(got) == 50:
                    return

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                for i in range(50):
                    await sender.execute("SELECT pg_notify('events', %s)", (str(i),))
                    if i % 10 == 0:
                        await anyio.sleep(0.01)  # some arrive while the listener waits
        assert got == [str(i) for i in range(50)]
    finally:
        listener.close()
        sender.close()


# -- COPY -------------------------------------------------------------------------

TRICKY = [
    (1, "tab\there", "plain"),
    (2, "new\nline", None),
    (3, "back\\slash \\N", ""),
    (4, None, "carriage\rreturn"),
    (5, "unicodé ✓ 𝄞", "emoji 🐘"),
    (6, "", "\\."),  # the old end-of-data marker, as a value
]


@pytest.fixture
def table(postgres: Postgres) -> Iterator[str]:
    """A fresh table (a real one: COPY runs in another session, which does
    not see TEMP tables), dropped afterwards."""
    name = f"copy_{uuid.uuid4().hex}"
    with psycopg2.connect(postgres.dsn) as setup, setup.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, a text, b text)")
    setup.close()
    yield name
    with psycopg2.connect(postgres.dsn) as teardown, teardown.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")
    teardown.close()


async def test_copy_round_trips_tricky_values(backend: str, postgres: Postgres, table: str) -> None:
    db, name = await connect(postgres.dsn), table
    try:
        for row in TRICKY:
            await db.execute(f"INSERT INTO {name} VALUES (%s, %s, %s)", row)
        out = io.BytesIO()
        assert await db.copy_expert(f"COPY {name} TO STDOUT", out) == len(TRICKY)
        lines = out.getvalue().decode().split("\n")
        assert lines[0] == "1\ttab\\there\tplain"  # text format escapes the tab
        assert lines[1] == "2\tnew\\nline\t\\N"  # and the newline; NULL is \N
        assert lines[3] == "4\t\\N\tcarriage\\rreturn"
        await db.execute(f"TRUNCATE {name}")
        out.seek(0)
        assert await db.copy_expert(f"COPY {name} FROM STDIN", out) == len(TRICKY)
        assert await db.fetchall(f"SELECT * FROM {name} ORDER BY id") == TRICKY
        # text files too (psycopg2 encodes and decodes them)
        text = io.StringIO()
        await db.copy_expert(f"COPY {name} TO STDOUT WITH (FORMAT csv)", text)
        assert "unicodé ✓ 𝄞" in text.getvalue()
    finally:
        db.close()


async def test_copy_a_large_table_without_blocking_the_loop(
    backend: str, postgres: Postgres, table: str
) -> None:
    db, name = await connect(postgres.dsn), table
    try:
        n = 100_000
        data = io.BytesIO(b"".join(b"%d\tvalue %d\t\\N\n" % (i, i * 7) for i in range(n)))
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0)
                ticks += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            assert await db.copy_expert(f"COPY {name} FROM STDIN", data) == n
            out = io.BytesIO()
            assert await db.copy_expert(f"COPY {name} TO STDOUT", out) == n
            tg.cancel_scope.cancel()
        assert ticks > 10  # the loop ran other tasks meanwhile
        assert out.getvalue() == data.getvalue()  # in id order: inserted in order, not updated
        assert await db.fetchall(f"SELECT count(*), sum(id) FROM {name}") == [(n, n * (n - 1) // 2)]
    finally:
        db.close()


async def test_copy_of_malformed_data_raises_and_keeps_the_connection(
    backend: str, postgres: Postgres, table: str
) -> None:
    db, name = await connect(postgres.dsn), table
    try:
        with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
            await db.copy_expert(f"COPY {name} FROM STDIN", io.BytesIO(b"1\tok\tok\nx\ty\tz\n"))
        with pytest.raises(psycopg2.errors.BadCopyFileFormat):
            await db.copy_expert(f"COPY {name} FROM STDIN", io.BytesIO(b"1\tonly two\n"))
        with pytest.raises(psycopg2.errors.UndefinedTable):
            await db.copy_expert("COPY no_such_table TO STDOUT", io.BytesIO())
        # nothing was copied (a COPY is all or nothing); the connection works
        assert await db.fetchall(f"SELECT count(*) FROM {name}") == [(0,)]
        assert await db.copy_expert(f"COPY {name} FROM STDIN", io.BytesIO(b"1\tok\t\\N\n")) == 1
        assert await db.fetchall(f"SELECT * FROM {name}") == [(1, "ok", None)]
    finally:
        db.close()


async def test_copy_through_execute_is_refused_and_keeps_the_connection(
    backend: str, postgres: Postgres
) -> None:
    # psycopg2 runs it, then cannot feed or drain it: the connection stayed
    # "in progress" for good
    db = await connect(postgres.dsn)
    try:
        for sql in ("COPY (SELECT 1) TO STDOUT", "  copy pg_class FROM STDIN"):
            with pytest.raises(psycopg2.ProgrammingError, match="copy_expert"):
                await db.execute(sql)
            assert await db.fetchall("SELECT 1") == [(1,)]
    finally:
        db.close()


async def test_copy_needs_a_way_to_connect(backend: str, postgres: Postgres) -> None:
    db = await connect(postgres.dsn)
    by_hand = Database(db.conn)
    with pytest.raises(ValueError, match="connect_blocking="):
        await by_hand.copy_expert("COPY (SELECT 1) TO STDOUT", io.BytesIO())
    by_hand.close()


async def test_execute_and_fetchall_keep_their_own_results(
    backend: str, postgres: Postgres
) -> None:
    db = await connect(postgres.dsn)
    try:
        first = await db.execute("SELECT 1")
        assert await db.fetchall("SELECT 2") == [(2,)]
        second = await db.execute("SELECT 3")
        assert first.fetchall() == [(1,)]
        assert second.fetchall() == [(3,)]
    finally:
        db.close()


#: a statement that answers a cancel request 0.5 s late: its handler sleeps.
#: Twice over: the server's postmaster signals a backend twice per cancel
#: request (the process, then its process group), and on a loaded machine
#: the second signal can land in the handler's sleep (4 times in 40 with
#: one handler, 0 in 40 with two, with two CPU hogs running)
_SLOW_TO_CANCEL = (
    "DO $$ BEGIN PERFORM pg_sleep(10);"
    " EXCEPTION WHEN query_canceled THEN"
    " BEGIN PERFORM pg_sleep(0.5);"
    " EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(0.5); END;"
    " END $$"
)


def _sleeping_now(pg: Postgres, pid: int, sql: str) -> bool:
    """Whether the server process ``pid`` (this test's connection) is inside
    ``sql``'s ``pg_sleep`` now (an ordinary blocking check).

    Inside ``pg_sleep``, not merely running: a DO block shows as active
    before its exception handler is in place, and a cancel request that
    lands then ends the statement at once.
    """
    return _activity(pg, pid, "query = %s AND wait_event = 'PgSleep'", sql)


async def _cancel_in_scope(db: Database, sql: str, backend: str, pg: Postgres) -> float:
    """Run ``sql`` and cancel it once the server runs it: by ``asyncio.timeout``
    on asyncio, by a trio cancel scope on trio.  Returns the seconds from the
    cancellation to the end of the scope."""
    cancelled: list[float] = []
    pid = db.conn.get_backend_pid()

    async def execute() -> None:
        await db.execute(sql)
        raise AssertionError("not cancelled")  # pragma: no cover

    async def when_active(cancel: Callable[[], object]) -> None:
        with anyio.fail_after(10):
            while not await run_sync(_sleeping_now, pg, pid, sql):
                await anyio.sleep(0.02)
        cancelled.append(time.monotonic())
        cancel()

    async with anyio.create_task_group() as tg:
        if backend == "trio":
            with anyio.CancelScope() as scope:
                tg.start_soon(when_active, scope.cancel)
                await execute()
            assert scope.cancelled_caught
        else:
            loop = asyncio.get_running_loop()
            deadline = asyncio.timeout(None)

            async def in_timeout() -> None:
                async with deadline:
                    tg.start_soon(when_active, lambda: deadline.reschedule(loop.time()))
                    await execute()

            with pytest.raises(TimeoutError):
                await in_timeout()
            task = asyncio.current_task()
            assert task is not None
            assert task.cancelling() == 0
    return time.monotonic() - cancelled[0]


async def _max_gap_while(fn: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """``fn()``'s result, and the longest the loop went without running a
    5 ms ticker meanwhile."""
    gaps = [0.0]
    last = [time.monotonic()]

    async def ticker() -> None:
        while True:
            await anyio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last[0])
            last[0] = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        result = await fn()
        gaps.append(time.monotonic() - last[0])  # up to now, ticked or not
        tg.cancel_scope.cancel()
    return result, max(gaps)


async def test_cancel_cleanup_keeps_the_loop_running(backend: str, postgres: Postgres) -> None:
    # The clean-up (cancel request, then the drain) waits 0.5 s for the
    # server here; done synchronously it blocked the loop all that time.
    db = await connect(postgres.dsn)
    try:
        took, gap = await _max_gap_while(
            lambda: _cancel_in_scope(db, _SLOW_TO_CANCEL, backend, postgres)
        )
        assert 0.5 <= took < 3  # waited for the drain, not for pg_sleep(10)
        assert gap < 0.2, f"the loop was blocked for {gap * 1000:.0f} ms"
        assert await db.fetchall("SELECT 1") == [(1,)]
    finally:
        db.close()


async def test_cancelled_pg_sleep_returns_at_once(backend: str, postgres: Postgres) -> None:
    db = await connect(postgres.dsn)
    try:
        took, gap = await _max_gap_while(
            lambda: _cancel_in_scope(db, "SELECT pg_sleep(10)", backend, postgres)
        )
        assert took < 1
        assert gap < 0.2, f"the loop was blocked for {gap * 1000:.0f} ms"
        assert _sleeping(postgres, db.conn.get_backend_pid()) == 0  # stopped on the server
        assert await db.fetchall("SELECT 2") == [(2,)]
        assert db.conn.status == ext.STATUS_READY
    finally:
        db.close()


async def test_cancel_cleanup_past_its_deadline_closes_the_connection(
    backend: str, postgres: Postgres
) -> None:
    db = await connect(postgres.dsn, cancel_timeout=0.1)
    try:
        took = await _cancel_in_scope(db, _SLOW_TO_CANCEL, backend, postgres)
        closed_by_cleanup = bool(db.conn.closed)
    finally:
        db.close()
    assert took < 0.45  # cut short at cancel_timeout, before the drain could end
    assert closed_by_cleanup  # out of step with the server: not reused


async def test_composed_copy_through_execute_is_refused_and_keeps_the_connection(
    backend: str, postgres: Postgres
) -> None:
    # psycopg2.sql is how a COPY names its table safely; such a statement
    # (or one with a leading comment) must meet the same refusal as a str,
    # not leave the connection "in progress" for good
    from psycopg2 import sql

    db = await connect(postgres.dsn)
    try:
        copies = (
            sql.SQL("COPY {} TO STDOUT").format(sql.Identifier("pg_class")),
            "-- all of it\nCOPY (SELECT 1) TO STDOUT",
        )
        for statement in copies:
            with pytest.raises(psycopg2.ProgrammingError):
                await db.execute(statement)  # type: ignore[arg-type]
            with anyio.fail_after(5):
                assert await db.fetchall("SELECT 1") == [(1,)]
    finally:
        db.close()


async def test_a_copy_later_in_a_multi_statement_string_closes_the_connection(
    backend: str, postgres: Postgres
) -> None:
    # libpq enters the COPY and psycopg2 cannot leave it on an async
    # connection: the recipe closes the connection rather than leave every
    # later query failing with "another command is already in progress"
    db = await connect(postgres.dsn)
    try:
        with pytest.raises(psycopg2.ProgrammingError, match="COPY"):
            await db.execute("SELECT 1; COPY (SELECT 1) TO STDOUT")
        assert db.conn.closed
        with pytest.raises(psycopg2.InterfaceError):
            await db.fetchall("SELECT 1")
    finally:
        db.close()
