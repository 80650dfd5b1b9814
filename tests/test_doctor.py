"""``python -m adapt doctor``: real blocking programs on asyncio, uvloop and trio."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LOOPS = ("asyncio", "uvloop", "trio")

#: each stall line carries ``# STALL:<tool>``: the suggestion the report must give
APP = """
import asyncio, os, socket, sqlite3, sys, threading, time

import requests

LOOP, URL, BIG = sys.argv[1:4]
QUERY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
QUERY += "SELECT count(*) FROM c"


def cpu_seconds(rows):
    # this thread's CPU time, the least of 3 runs: other processes' load
    # made one wall-clock run too long, and the query sized by it too short
    times = []
    for _ in range(3):
        start = time.thread_time()
        sqlite3.connect(":memory:").execute(QUERY, (rows,)).fetchall()
        times.append(time.thread_time() - start)
    return min(times)


ROWS = int(100000 * 0.3 / cpu_seconds(100000))  # a query of about 0.3 s


async def main(sleep):
    await sleep(0.02)
    time.sleep(0.2)  # STALL:sleep
    await sleep(0.02)
    a, b = socket.socketpair()
    timer = threading.Timer(0.2, b.send, (b"x",))
    timer.start()
    a.recv(1)  # STALL:Async
    await sleep(0.02)
    timer.join()
    a.close()
    b.close()
    with open(BIG, "rb") as f:
        end = time.monotonic() + 0.2  # by the clock: the page cache may be fast
        while time.monotonic() < end:
            f.seek(0)
            f.read()  # STALL:reader
    await sleep(0.02)
    db = sqlite3.connect(":memory:")
    db.execute(QUERY, (ROWS,)).fetchall()  # STALL:asyncify(pin=True)
    db.close()
    await sleep(0.02)
    requests.get(URL, timeout=10).raise_for_status()  # STALL:run_sync
    await sleep(0.02)
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end: pass  # STALL:run_sync
    await sleep(0.02)


if LOOP == "trio":
    import trio
    trio.run(main, trio.sleep)
elif LOOP == "uvloop":
    import uvloop
    uvloop.run(main(asyncio.sleep))
else:
    asyncio.run(main(asyncio.sleep))
"""

QUIET = """
import asyncio, socket, sys

from adapt import Async

LOOP = sys.argv[1]


async def main(sleep):
    a, b = socket.socketpair()
    with a, b:
        for _ in range(300):
            await Async(a).send(b"ping")
            assert await Async(b).recv(4) == b"ping"
            await sleep(0.001)


if LOOP == "trio":
    import trio
    trio.run(main, trio.sleep)
elif LOOP == "uvloop":
    import uvloop
    uvloop.run(main(asyncio.sleep))
else:
    asyncio.run(main(asyncio.sleep))
"""


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.2)
        body = b"slow hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def slow_http() -> Iterator[str]:
    """A real HTTP server on loopback that answers after 200 ms."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 64 MiB regular file (the program reads it again and again for 0.2 s)."""
    path = tmp_path_factory.mktemp("doctor") / "big.bin"
    block = b"\xa5" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(block)
    yield str(path)
    path.unlink()


def _doctor(
    tmp_path: Path, *command: str, options: tuple[str, ...] = (), timeout: float = 60
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "adapt", "doctor", "--json", "-o", str(out), *options, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
    assert out.exists(), f"no report; stderr:\n{proc.stderr}"
    return json.loads(out.read_text()), proc


def _expected(source: str) -> dict[int, str]:
    return {
        n: m.group(1)
        for n, line in enumerate(source.splitlines(), 1)
        if (m := re.search(r"# STALL:(\S+)", line))
    }


@pytest.mark.parametrize("loop", LOOPS)
def test_real_blocking_calls_are_named_with_their_fix(
    loop: str, tmp_path: Path, slow_http: str, big_file: str
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    report, proc = _doctor(tmp_path, "--", sys.executable, str(app), loop, slow_http, big_file)
    assert proc.returncode == 0, proc.stderr
    sites = {s["lineno"]: s for s in report["sites"] if s["filename"] == str(app)}
    for lineno, tool in _expected(APP).items():
        assert lineno in sites, f"line {lineno} ({tool}) not reported:\n{json.dumps(report)}"
        site = sites[lineno]
        assert site["suggestion"]["tool"] == tool, site
        assert site["count"] == 1, site
        assert site["loops"] == [loop]
        assert site["worst"] >= 0.05
        assert {"filename": str(app), "lineno": lineno} in [
            {"filename": e["filename"], "lineno": e["lineno"]} for e in site["stack"]
        ]
    requests_site = next(s for s in sites.values() if "requests.get(" in s["line"])
    assert requests_site["call"] == "requests.get"
    assert requests_site["stack"][-1]["filename"].endswith("socket.py")  # where it waited
    assert "adapt.run_sync(requests.get" in requests_site["suggestion"]["text"]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_program_that_does_not_stall_reports_nothing(loop: str, tmp_path: Path) -> None:
    app = tmp_path / "quiet.py"
    app.write_text(QUIET)
    report, proc = _doctor(tmp_path, "--", sys.executable, str(app), loop)
    assert proc.returncode == 0, proc.stderr
    # a stall of the machine (the loop thread not run) shows as "idle"
    assert [s for s in report["sites"] if s["kind"] != "idle"] == [], report
    assert report["monitored"] > 0.3


def test_text_report_module_and_script_forms(tmp_path: Path) -> None:
    (tmp_path / "stalling.py").write_text(
        textwrap.dedent(
            """
            import asyncio, time

            async def main():
                time.sleep(0.15)
                await asyncio.sleep(0.01)

            asyncio.run(main())
            """
        )
    )
    for form in (["-m", "stalling"], ["stalling.py"]):
        proc = subprocess.run(
            [sys.executable, "-m", "adapt", "doctor", *form],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert "stalling.py:5 in main: 1 stall(s)" in proc.stderr, proc.stderr
        assert "time.sleep(0.15)" in proc.stderr
        assert "use `await asyncio.sleep(...)` instead" in proc.stderr
    # --fail: a distinct exit status for CI
    proc = subprocess.run(
        [sys.executable, "-m", "adapt", "doctor", "--fail", "stalling.py"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 3


def test_the_program_exit_status_is_kept(tmp_path: Path) -> None:
    (tmp_path / "fails.py").write_text("import sys\nsys.exit(7)\n")
    report, proc = _doctor(tmp_path, "fails.py")
    assert proc.returncode == 7
    assert report["sites"] == []


def test_bad_usage_is_a_clear_error(tmp_path: Path) -> None:
    for args, message in (
        ([], "give the program to run"),
        (["--threshold", "0", "x.py"], "--threshold must be > 0"),
        (["--", "/nonexistent/program"], "cannot run '/nonexistent/program'"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "adapt", "doctor", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode != 0
        assert message in proc.stderr, proc.stderr


def test_ctrl_c_stops_the_program_and_prints_the_report(tmp_path: Path) -> None:
    (tmp_path / "forever.py").write_text(
        textwrap.dedent(
            """
            import asyncio, time

            async def main():
                time.sleep(0.15)
                await asyncio.sleep(0.05)
                print("ready", flush=True)
                while True:
                    await asyncio.sleep(1)

            asyncio.run(main())
            """
        )
    )
    out = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapt", "doctor", "--json", "-o", str(out), "forever.py"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 128 + signal.SIGINT
    report = json.loads(out.read_text())
    assert [(s["lineno"], s["call"]) for s in report["sites"]] == [(5, "time.sleep")]


@pytest.mark.slow
def test_the_report_of_a_10s_program_is_ready_within_100ms_of_exit(tmp_path: Path) -> None:
    (tmp_path / "ten.py").write_text(
        textwrap.dedent(
            """
            import asyncio, sys, time

            async def main():
                end = time.monotonic() + 10
                stalls = 0
                while time.monotonic() < end:
                    time.sleep(0.15)
                    stalls += 1
                    for _ in range(50):
                        await asyncio.sleep(0.015)
                return stalls

            stalls = asyncio.run(main())
            print(stalls, time.time(), flush=True)
            """
        )
    )
    out = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapt", "doctor", "--json", "-o", str(out), "ten.py"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    with proc:
        assert proc.stdout is not None
        stalls, ended = map(float, proc.stdout.readline().split())
        proc.wait(timeout=30)
    done = out.stat().st_mtime  # when the doctor wrote the report
    assert proc.returncode == 0
    report = json.loads(out.read_text())
    assert report["stalls"] == stalls
    assert report["monitored"] >= 10
    # from the program's last line: this includes the interpreter's own exit
    assert done - ended < 0.1, f"report ready {done - ended:.3f} s after the program ended"


# -- the adapt_no_stalls pytest fixture ----------------------------------------

PLUGIN_TESTS = """
import asyncio, time

import pytest
import trio


def test_stalls(adapt_no_stalls):
    async def main():
        time.sleep(0.15)
        await asyncio.sleep(0.01)

    asyncio.run(main())


def test_stalls_on_trio(adapt_no_stalls):
    async def main():
        time.sleep(0.15)
        await trio.sleep(0.01)

    trio.run(main)


def test_quiet(adapt_no_stalls):
    async def main():
        for _ in range(20):
            await asyncio.sleep(0.005)

    asyncio.run(main())


@pytest.mark.adapt_no_stalls(threshold=0.5)
def test_under_a_looser_threshold(adapt_no_stalls):
    async def main():
        time.sleep(0.15)
        await asyncio.sleep(0.01)

    asyncio.run(main())


def test_without_the_fixture_nothing_is_installed():
    import asyncio.base_events
    assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
    assert not hasattr(trio.run, "__wrapped__")
"""


def test_the_pytest_fixture_fails_a_test_whose_loop_stalled(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(PLUGIN_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = proc.stdout
    assert "2 failed, 3 passed" in out, out
    assert "FAILED test_app.py::test_stalls -" in out
    assert "FAILED test_app.py::test_stalls_on_trio -" in out
    assert "test_app.py:10 in main: 1 stall(s)" in out
    assert "use `await asyncio.sleep(...)` instead" in out
    assert "test_app.py:18 in main: 1 stall(s)" in out
    assert "use `await trio.sleep(...)` instead" in out
