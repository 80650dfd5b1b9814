"""adapt.monitor(): stalls found in-process, on asyncio, uvloop and trio."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import linecache
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import adapt
from adapt._monitor import _attribute, _frames, _timerfd
from adapt._monitor._report import Stall
from adapt._monitor._table import MODULES, suggest

HERE = __file__


def _line(marker: str) -> int:
    """The line of this file that carries ``marker`` in a comment."""
    with open(HERE) as f:
        for n, text in enumerate(f, 1):
            if re.search(rf"# {re.escape(marker)}(?!\S)", text):
                return n
    raise AssertionError(f"no line marked {marker}")


def _forget_call_sites() -> None:
    """Make every call site new to the monitor (as in a fresh process)."""
    _frames._user_files.clear()
    _frames._callees.clear()
    linecache.clearcache()


def _cpu_seconds(fn: Callable[..., object], *args: object) -> float:
    """The CPU time ``fn(*args)`` takes this thread, the least of 3 runs (the
    first one warms up): to size work that must last a given time.  Timed by
    the wall clock once, beside 6 processes busy in bursts on 2 cores, 3 to
    22 in 60 runs measured the time other processes took too: the work sized
    by them lasted under 75 ms (1.5 x the threshold) when the load had gone,
    and a stall went unreported; by this thread's CPU time none did."""
    times = []
    for _ in range(3):
        start = time.thread_time()
        fn(*args)
        times.append(time.thread_time() - start)
    return min(times)


async def _next_beat(m: adapt.Monitor) -> None:
    """Return once the monitor's heartbeat has run again (so that a stall
    before this and one after are recorded apart, whatever the machine)."""
    expired = m._expired
    with anyio.fail_after(5):
        while m._expired == expired:
            await anyio.sleep(0.001)


def _site(report: adapt.StallReport, lineno: int) -> adapt.StallSite:
    found = [s for s in report.sites if s.filename == HERE and s.lineno == lineno]
    assert found, f"no stall reported at line {lineno}:\n{report.format()}"
    return found[0]


async def test_every_100ms_stall_is_reported_with_its_line(backend: str) -> None:
    beats = []  # heartbeats by the end of each stall and of each sleep (if it fails)
    async with adapt.monitor() as m:
        for _ in range(10):
            time.sleep(0.1)  # STALL-100
            beats.append(m._expired)
            await anyio.sleep(0.02)
            beats.append(m._expired)
    report = m.report()
    site = _site(report, _line("STALL-100"))
    assert site.count == 10, f"{report.format()}\nbeats: {beats}"
    assert 0.075 <= site.worst <= 0.5
    assert site.total >= 10 * 0.05  # each one is late by the threshold at least
    assert site.call == "time.sleep"
    assert site.line.startswith("time.sleep(0.1)")
    assert site.suggestion.tool == "sleep"
    sleep = "trio.sleep" if backend == "trio" else "asyncio.sleep"
    assert f"await {sleep}(" in site.suggestion.text
    expected_loop = "uvloop" if backend == "uvloop" else backend
    assert site.loops == (expected_loop,)
    assert site.stack[-1].lineno == site.lineno
    assert site.stack[-1].function == "test_every_100ms_stall_is_reported_with_its_line"


async def test_a_stall_just_after_a_beat_is_reported_with_its_line(backend: str) -> None:
    # the worst phase: the stall begins just after a beat, so the next timer
    # expiration is a whole period into it, and the watchdog's dead-man
    # timer was pushed back as far as it goes
    async with adapt.monitor() as m:
        for _ in range(5):
            expired = m._expired
            while m._expired == expired:
                await anyio.sleep(0)
            time.sleep(0.1)  # STALL-PHASE
    site = _site(m.report(), _line("STALL-PHASE"))
    assert site.count == 5, m.report().format()
    assert site.call == "time.sleep"


async def test_a_loop_that_keeps_up_never_wakes_the_watchdog(backend: str) -> None:
    # each beat pushes the watchdog's dead-man timer back: neither an idle
    # loop (its poll waits on the heartbeat's timer alone) nor a busy one
    # hands the GIL to the watchdog (a threshold of 0.5 s, so that a loaded
    # machine does not hold a beat up that long)
    a, b = socket.socketpair()
    with a, b:
        async with adapt.Monitor(0.5) as m:
            await anyio.sleep(0.6)  # idle
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.6:  # busy
                await adapt.Async(a).send(b"x")
                assert await adapt.Async(b).recv(1) == b"x"
                await anyio.sleep(0)  # (the shims' calls that succeed at once don't yield)
            beats = m._expired
    assert beats >= 4, beats  # one every 0.25 s
    assert m._wakes == 0
    assert not m.report().sites, m.report().format()


async def test_c_code_holding_the_gil_is_one_stall_at_its_line(backend: str) -> None:
    # sum() over a range never gives the GIL up: the kernel's timer expires
    # on time and the beat runs late; the watchdog, woken meanwhile, gets
    # the GIL at the first bytecode after the call and samples that line
    # the line of the sample, never "not sampled", also when the call site is
    # new to the monitor: then looking it up gives the GIL back (stat, source
    # files) and the loop thread runs its late beat meanwhile; the watchdog
    # must have decided that its stack shows the stall before that (it
    # missed about 1 time in 3 when it decided after)
    n = int(1_000_000 * 0.2 / _cpu_seconds(sum, range(1_000_000)))  # about 0.2 s
    async with adapt.monitor() as m:
        for _ in range(3):
            await anyio.sleep(0.05)
            _forget_call_sites()
            sum(range(n))  # STALL-GIL
            await anyio.sleep(0.05)
    report = m.report()
    site = _site(report, _line("STALL-GIL"))
    assert site.count == 3, report.format()
    assert site.worst >= 0.07
    assert site.suggestion.tool == "run_sync"
    assert [s for s in report.sites if s.kind != "idle"] == [site], report.format()


async def test_a_loop_that_does_not_stall_reports_nothing(backend: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        async with adapt.monitor() as m:
            for _ in range(200):
                await adapt.Async(a).send(b"x")
                assert await adapt.Async(b).recv(1) == b"x"
                await anyio.sleep(0.001)
    report = m.report()
    # a stall of the machine (the loop thread not run) shows as "idle"
    assert [s for s in report.sites if s.kind != "idle"] == [], report.format()
    assert report.monitored > 0.2
    if not report.sites:
        assert "no stall over 50 ms" in report.format()


async def test_blocking_calls_get_their_suggestions(backend: str) -> None:
    a, b = socket.socketpair()
    timer = threading.Timer(0.15, b.send, (b"x",))
    db = sqlite3.connect(":memory:")
    query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
    query += "SELECT count(*) FROM c"
    seconds = _cpu_seconds(lambda: db.execute(query, (100_000,)).fetchall())
    rows = int(100_000 * 0.3 / seconds)  # a query of about 0.3 s
    try:
        with a, b:
            async with adapt.monitor() as m:
                timer.start()
                a.recv(1)  # STALL-RECV
                await anyio.sleep(0.01)
                db.execute(query, (rows,)).fetchall()  # STALL-SQL
                await anyio.sleep(0.01)
                end = time.perf_counter() + 0.3
                while time.perf_counter() < end: pass  # STALL-CPU  # noqa: E701  # fmt: skip
                await anyio.sleep(0.01)
    finally:
        timer.join()
        db.close()
    report = m.report()
    recv = _site(report, _line("STALL-RECV"))
    assert recv.call == "a.recv"
    assert recv.suggestion.tool == "Async"
    assert "Async(a).recv(" in recv.suggestion.text
    sql = _site(report, _line("STALL-SQL"))
    assert sql.suggestion.tool == "asyncify(pin=True)"
    assert "asyncify(sqlite3.Connection, pin=True)" in sql.suggestion.text
    cpu = _site(report, _line("STALL-CPU"))
    assert cpu.suggestion.tool == "run_sync"
    assert cpu.call in ("", "time.perf_counter")


async def test_regular_file_reads_and_writes(backend: str, tmp_path: object) -> None:
    # each stall lasts 0.2 s however fast the machine's files are (a single
    # read of a file in the page cache can take less than the threshold),
    # and a beat separates them (this test is about the suggestions)
    path = f"{tmp_path}/big.bin"
    block = b"\xa5" * (1 << 20)
    async with adapt.monitor(threshold=0.01) as m:
        await _next_beat(m)
        with open(path, "wb") as f:
            until = time.monotonic() + 0.2
            while time.monotonic() < until:
                f.write(block)  # STALL-WRITE
                f.flush()  # STALL-FLUSH
        await _next_beat(m)
        with open(path, "rb") as f:
            until = time.monotonic() + 0.2
            while time.monotonic() < until:
                f.seek(0)
                f.read()  # STALL-READ
        await _next_beat(m)
    report = m.report()
    read = _site(report, _line("STALL-READ"))
    assert read.suggestion.tool == "reader"
    assert "adapt.reader(f)" in read.suggestion.text
    writes = [s for s in report.sites if s.lineno in (_line("STALL-WRITE"), _line("STALL-FLUSH"))]
    assert writes, report.format()
    assert {s.suggestion.tool for s in writes} == {"writer"}


async def test_gc_pauses_are_told_apart(backend: str) -> None:
    class Node:
        other: object = None

    garbage: list[Node] = []
    for _ in range(40):
        for _ in range(10_000):
            a, b = Node(), Node()
            a.other, b.other = b, a
            garbage.append(a)
        await anyio.sleep(0)
    async with adapt.monitor(threshold=0.01) as m:
        await anyio.sleep(0.01)
        gc.collect()
        await anyio.sleep(0.01)
    del garbage
    gc.collect()
    report = m.report()
    pauses = [s for s in report.sites if s.kind == "gc"]
    assert pauses, report.format()
    assert pauses[0].suggestion.tool == "gc"
    assert "generation 2" in pauses[0].suggestion.text
    assert "garbage collection" in report.format()


async def test_report_while_running_and_json(backend: str) -> None:
    async with adapt.monitor() as m:
        time.sleep(0.1)  # STALL-JSON
        for _ in range(100):  # the watchdog records it soon after the loop resumes
            await anyio.sleep(0.01)
            during = m.report()
            if during.sites:
                break
    assert _site(during, _line("STALL-JSON")).count == 1
    data = json.loads(m.report().to_json())
    assert data["stalls"] == 1
    assert data["sites"][0]["lineno"] == _line("STALL-JSON")
    assert data["sites"][0]["suggestion"]["tool"] == "sleep"


async def test_sync_with_inside_a_running_loop(backend: str) -> None:
    with adapt.monitor(0.02) as m:
        time.sleep(0.05)  # STALL-SYNC-WITH
        await anyio.sleep(0.01)
    assert _site(m.report(), _line("STALL-SYNC-WITH")).count == 1


async def test_a_monitor_is_used_once(backend: str) -> None:
    m = adapt.monitor()
    async with m:
        with pytest.raises(RuntimeError, match="make a new one"):
            await m.__aenter__()
    with pytest.raises(RuntimeError, match="make a new one"):
        await m.__aenter__()


def test_outside_a_loop_is_a_clear_error() -> None:
    with (
        pytest.raises(RuntimeError, match=r"inside an asyncio, uvloop or trio program"),
        adapt.monitor(),
    ):
        pass


@pytest.mark.parametrize(
    ("threshold", "error"),
    [
        (True, TypeError),
        ("0.1", TypeError),
        (0, ValueError),
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (0.0001, ValueError),
    ],
)
def test_bad_threshold(threshold: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="threshold"):
        adapt.monitor(threshold)  # type: ignore[arg-type]


async def test_the_heartbeat_does_not_wake_a_stalled_watchdog_forever(backend: str) -> None:
    # the watchdog thread ends with the monitor (the leak guard checks too)
    async with adapt.monitor():
        assert any(t.name.startswith("adapt.monitor watchdog") for t in threading.enumerate())
    assert not any(t.name.startswith("adapt.monitor watchdog") for t in threading.enumerate())


def test_stall_records_round_trip_through_json() -> None:
    async def main() -> adapt.StallReport:
        async with adapt.monitor() as m:
            time.sleep(0.15)
            await asyncio.sleep(0.01)
        return m.report()

    report = asyncio.run(main())
    site = report.sites[0]
    stall = Stall(
        kind=site.kind,
        loop="asyncio",
        duration=site.worst,
        site=site.stack[-1],
        call=site.call,
        stack=site.stack,
        suggestion=site.suggestion,
        samples=2,
    )
    assert Stall.from_dict(json.loads(json.dumps(stall.to_dict()))) == stall


# -- the table ---------------------------------------------------------------

RECIPES = "inotify tls subprocess pty serial linuxfd multiprocessing console psycopg2"
RECIPES += " paho_mqtt zmq paramiko redis"


def _tool(**kw: object) -> tuple[str, str | None]:
    args: dict[str, object] = {
        "call": "lib.call",
        "library_modules": (),
        "function": "",
        "receiver": (),
        "fd_kind": "",
        "loop": "asyncio",
    }
    args.update(kw)
    s = suggest(**args)  # type: ignore[arg-type]
    return s.tool, s.recipe


def test_every_recipe_is_in_the_table() -> None:
    named = {tool.partition(":")[2] for tool in MODULES.values() if tool.startswith("recipe:")}
    assert set(RECIPES.split()) - {"console"} <= named


def test_every_shipped_recipe_is_in_the_table() -> None:
    import pkgutil

    import adapt.recipes

    from adapt._monitor._table import BY_FD_KIND, CALLS, TYPES

    shipped = {m.name for m in pkgutil.iter_modules(adapt.recipes.__path__)}
    tools = {*MODULES.values(), *CALLS.values(), *TYPES.values(), *BY_FD_KIND.values()}
    named = {tool.partition(":")[2] for tool in tools if tool.startswith("recipe:")}
    assert shipped <= named, f"recipes the doctor never suggests: {shipped - named}"


@pytest.mark.parametrize(
    ("modules", "recipe"),
    [
        (("paho.mqtt.client",), "paho_mqtt"),
        (("socket", "serial.serialposix"), "serial"),
        (("zmq.sugar.socket",), "zmq"),
        (("ssl", "psycopg2.extras"), "psycopg2"),  # the library the program called decides
        (("time", "pexpect.pty_spawn"), "pty"),
        (("multiprocessing.connection",), "multiprocessing"),
        (("redis.connection", "redis.client"), "redis"),
        (("paramiko.channel",), "paramiko"),
        (("inotify_simple",), "inotify"),
        (("linuxfd",), "linuxfd"),
        (("subprocess",), "subprocess"),
        (("ssl",), "tls"),
        (("getpass",), "console"),
    ],
)
def test_libraries_with_a_recipe(modules: tuple[str, ...], recipe: str) -> None:
    assert _tool(library_modules=modules) == ("recipe", recipe)


def test_c_calls_and_types() -> None:
    assert _tool(function="time.sleep")[0] == "sleep"
    assert _tool(function="builtins.input") == ("recipe", "console")
    sock = ("socket.socket", "_socket.socket", "builtins.object")
    assert _tool(call="s.recv", receiver=sock)[0] == "Async"
    assert _tool(call="s.recv", receiver=("ssl.SSLSocket", *sock)) == ("recipe", "tls")
    buffered = ("_io.BufferedReader", "_io._BufferedIOBase", "_io._IOBase", "builtins.object")
    assert _tool(call="f.read", receiver=buffered, fd_kind="regular")[0] == "reader"
    assert _tool(call="f.write", receiver=buffered, fd_kind="regular")[0] == "writer"
    assert _tool(call="f.read", receiver=buffered, fd_kind="pipe")[0] == "Async"
    assert _tool(call="f.read", receiver=buffered, fd_kind="pty") == ("recipe", "pty")
    assert _tool(call="f.read", receiver=buffered, fd_kind="tty") == ("recipe", "serial")
    assert _tool(call="f.readline", receiver=buffered, fd_kind="console") == ("recipe", "console")
    assert _tool(call="os.read", function="os.read", fd_kind="pipe")[0] == "Async"
    assert _tool(call="os.read", function="os.read", fd_kind="regular")[0] == "reader"
    assert _tool(call="c.execute", receiver=("sqlite3.Cursor",))[0] == "asyncify(pin=True)"
    assert _tool(library_modules=("requests.api",))[0] == "run_sync"
    assert _tool(library_modules=("socket", "http.client", "requests.api"))[0] == "run_sync"
    assert _tool(library_modules=("serial.serialposix", "contextlib")) == ("recipe", "serial")
    assert _tool(call="", library_modules=())[0] == "run_sync"


async def test_on_stall_hears_of_each_stall_on_the_loop(backend: str) -> None:
    heard: list[tuple[adapt.Stall, int]] = []
    m = adapt.Monitor(0.05, on_stall=lambda s: heard.append((s, threading.get_ident())))
    async with m:
        time.sleep(0.1)  # STALL-CALLBACK
        for _ in range(100):
            await anyio.sleep(0.01)
            if heard:
                break
        assert len(heard) == 1  # before the monitor stops
    stall, thread = heard[0]
    assert thread == threading.get_ident()  # the loop's thread (the watchdog has no fds)
    assert stall.site.lineno == _line("STALL-CALLBACK")
    assert stall.call == "time.sleep"
    assert 0.05 <= stall.duration <= 0.5
    assert stall.samples >= 1


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_sample_of_an_idle_loop_blames_no_line(backend: str) -> None:
    # a real loop, idle in its poll in another thread: what the watchdog sees
    # when the machine (or another thread's GIL) held the loop thread up
    import sys

    from adapt._monitor._frames import complete, snapshot

    ready = threading.Event()

    async def idle() -> None:
        ready.set()
        await anyio.sleep(0.3)

    options = {"use_uvloop": backend == "uvloop"} if backend != "trio" else {}
    thread = threading.Thread(
        target=anyio.run,
        args=(idle,),
        kwargs={"backend": backend.replace("uvloop", "asyncio"), "backend_options": options},
    )
    thread.start()
    try:
        ready.wait(5)
        time.sleep(0.1)
        assert thread.ident is not None
        frame = sys._current_frames()[thread.ident]
        sample = complete(snapshot(frame, f"/proc/self/task/{thread.native_id}/fd"))
        del frame  # (a kept frame keeps the loop's locals alive)
    finally:
        thread.join()
    stall = _attribute.stall_from([(sample, 0.1)], 0.1, "")
    assert stall.kind == "idle", stall
    assert stall.suggestion.tool == "none"


def _may_unshare_files() -> bool:
    """Whether this system lets a thread take a table of its own (tried in
    a thread of its own, which ends with it)."""
    result: list[bool] = []

    def probe() -> None:
        result.append(ctypes.CDLL(None, use_errno=True).unshare(_timerfd._CLONE_FILES) == 0)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]


async def test_the_watchdog_holds_no_file_of_the_program(backend: str) -> None:
    # while a second thread shares the fd table, every system call on an fd
    # costs the loop more (see private_fd_table): the watchdog has a table of
    # its own with its timer only -- and no copy of the program's files, so
    # a close in the program still ends them
    private = _may_unshare_files()  # (first: the probe's table dies a moment after it)
    a, b = socket.socketpair()
    with b:
        async with adapt.monitor() as m:
            assert m._watchdog is not None
            assert m._deadman is not None
            table = f"/proc/self/task/{m._watchdog.native_id}/fd"
            if private:
                for _ in range(100):  # (the thread makes its table when it starts)
                    if os.listdir(table) == [str(m._deadman.fd)]:
                        break
                    await anyio.sleep(0.01)
                assert os.listdir(table) == [str(m._deadman.fd)]
            else:  # refused (a seccomp filter): the table stays the process's
                assert str(a.fileno()) in os.listdir(table)
            a.close()
            b.setblocking(False)
            assert b.recv(1) == b""  # the end, now: no copy of a is open
            time.sleep(0.1)  # STALL-PRIVATE (still sampled, its call resolved)
            await anyio.sleep(0.05)
    site = _site(m.report(), _line("STALL-PRIVATE"))
    assert site.call == "time.sleep"


async def test_on_stall_raising_keeps_the_monitor_and_the_loop(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[adapt.Stall] = []

    def on_stall(stall: adapt.Stall) -> None:
        calls.append(stall)
        raise ValueError("from on_stall")

    async with adapt.Monitor(0.05, on_stall=on_stall) as m:
        time.sleep(0.1)
        await anyio.sleep(0.1)
        time.sleep(0.1)
        await anyio.sleep(0.1)
    assert len(calls) == 2
    assert len(m.report().sites) >= 1
    assert capsys.readouterr().err.count("ValueError: from on_stall") == 2


def test_fd_kinds_are_read_through_proc(tmp_path: Path) -> None:
    # the watchdog names the loop thread's files by their /proc entries
    r, w = os.pipe()
    master, slave = os.openpty()
    null = os.open(os.devnull, os.O_RDONLY)
    regular = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    sock = socket.socket()
    fds = "/proc/thread-self/fd"
    try:
        assert _frames._fd_kind(r, fds) == "pipe"
        assert _frames._fd_kind(regular, fds) == "regular"
        assert _frames._fd_kind(sock.fileno(), fds) == "socket"
        assert _frames._fd_kind(slave, fds) == "pty"
        assert _frames._fd_kind(null, fds) == "chardev"
        assert _frames._fd_kind(10_000, fds) == ""  # not open
    finally:
        for fd in (r, w, master, slave, null, regular):
            os.close(fd)
        sock.close()


_SIGNALLER = """
import os, signal, sys
for _ in range(100):
    os.kill(int(sys.argv[1]), signal.SIGUSR1)
    os.kill(int(sys.argv[1]), signal.SIGUSR2)
    sys.stdin.buffer.read(1)  # both were handled
"""


async def test_signals_reach_the_loop_while_the_watchdog_runs(backend: str) -> None:
    # the kernel hands a process-directed signal to a thread that does not
    # block it, the watchdog too when the loop thread has one pending; in
    # the watchdog, Python's handler found no wake-up fd in its table and
    # the signal was lost.  The watchdog is born with every signal blocked.
    async with adapt.monitor() as m:
        assert m._watchdog is not None
        status = Path(f"/proc/self/task/{m._watchdog.native_id}/status").read_text()
        blocked = int(re.search(r"SigBlk:\s*([0-9a-f]+)", status)[1], 16)  # type: ignore[index]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD):
            assert blocked & (1 << (sig - 1)), sig
        with anyio.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as signals:
            child = subprocess.Popen(
                [sys.executable, "-c", _SIGNALLER, str(os.getpid())], stdin=subprocess.PIPE
            )
            assert child.stdin is not None
            pairs, seen = 0, set()
            try:
                with anyio.fail_after(10):
                    async for signum in signals:
                        seen.add(signum)
                        if len(seen) == 2:
                            pairs, seen = pairs + 1, set()
                            os.write(child.stdin.fileno(), b"x")
                            if pairs == 100:
                                break
            finally:
                child.stdin.close()
                child.kill()
                child.wait()
    assert pairs == 100


async def test_a_failing_watchdog_is_reported_on_the_loop(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # its own fd table has no fd 2: the failure is printed by the loop
    def boom() -> None:
        raise RuntimeError("watchdog boom")

    async with adapt.monitor() as m:
        m._check_gc = boom  # type: ignore[method-assign]
        time.sleep(0.1)
        await anyio.sleep(0.1)
    err = capsys.readouterr().err
    assert "adapt.monitor: the watchdog failed" in err
    assert "RuntimeError: watchdog boom" in err


async def test_a_sample_between_two_calls_keeps_the_lines_suggestion(backend: str) -> None:
    # a stall's samples at one line: most inside the sqlite3 call, the last
    # one between two calls on the line (as the stall ended): the line's
    # suggestion comes from a sample that shows what the line calls
    import dataclasses

    from adapt._monitor._frames import complete, snapshot

    db = sqlite3.connect(":memory:")
    taken: list[object] = []

    def probe() -> int:
        frame = sys._getframe(1)  # the line below, inside db.execute
        taken.append(complete(snapshot(frame, "/proc/self/fd")))
        del frame
        return 1

    db.create_function("probe", 0, probe)
    try:
        db.execute("SELECT probe()").fetchall()  # STALL-BETWEEN
    finally:
        db.close()
    in_call = taken[0]
    assert isinstance(in_call, _frames.Sample)
    assert in_call.callee is not None, in_call
    between = dataclasses.replace(in_call, callee=None)
    stall = _attribute.stall_from([(in_call, 0.2), (between, 0.0025)], 0.2, "")
    assert stall.site.lineno == _line("STALL-BETWEEN")
    assert stall.suggestion.tool == "asyncify(pin=True)", stall.suggestion


async def test_a_sample_in_the_monitors_gc_callback_is_the_programs_call(backend: str) -> None:
    # the monitor's gc callback runs inside whatever call allocated; C code
    # holding the GIL hands it to the watchdog there: the sample is that call
    from adapt._monitor._core import _GC_CALLBACK, _program_frame
    from adapt._monitor._frames import Snapshot, complete, snapshot

    taken: list[Snapshot] = []

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is _GC_CALLBACK and not taken:
            program = _program_frame(frame)  # what the watchdog samples
            assert program is not None
            taken.append(snapshot(program, "/proc/self/fd"))

    async with adapt.monitor():
        sys.setprofile(profile)
        try:
            gc.collect()  # STALL-IN-GC
        finally:
            sys.setprofile(None)
    assert taken
    stall = _attribute.stall_from([(complete(taken.pop()), 0.2)], 0.2, "")
    assert stall.kind == "call", stall
    assert stall.site.lineno == _line("STALL-IN-GC")
    assert stall.call == "gc.collect"
