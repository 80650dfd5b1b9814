"""The directory watcher in examples/inotify, end to end: started as a child
process on a temp tree, changed by the test, its output read back."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WATCH = ROOT / "examples" / "inotify" / "watch.py"
LOOPS = ["asyncio", "trio"]
WAIT = 15.0  # seconds to wait for one expected line

Event = dict[str, Any]


class Watcher:
    """The watcher running on ``root``; its stdout and stderr read by two threads."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WATCH), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.out)),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.err)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream: Any, into: queue.Queue[str | None]) -> None:
        for line in stream:
            into.put(line.rstrip("\n"))
        into.put(None)

    def stderr_line(self, starts: str) -> str:
        """Wait for a line on stderr that starts with ``starts``."""
        deadline = time.monotonic() + WAIT
        while True:
            line = self.err.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"stderr ended before {starts!r}: {self.stderr_lines}"
            self.stderr_lines.append(line)
            if line.startswith(starts):
                return line

    def line(self) -> str:
        line = self.out.get(timeout=WAIT)
        assert line is not None, f"stdout ended; stderr: {self.stderr_lines}"
        return line

    def event(self) -> Event:
        event: Event = json.loads(self.line())
        return event

    def until(self, event: str, path: str) -> list[Event]:
        """Events up to and including the first ``(event, path)``."""
        seen = []
        while True:
            seen.append(self.event())
            if (seen[-1]["event"], seen[-1]["path"]) == (event, path):
                return seen

    def finish(self, signum: int | None = signal.SIGTERM) -> int:
        """Send ``signum`` (None: none), wait for the exit, return the status."""
        if self.process.stdout is not None and self.process.stdout.closed:
            return self.process.wait()
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self._readers:
                reader.join(timeout=WAIT)
            assert self.process.stdout is not None
            assert self.process.stderr is not None
            self.process.stdout.close()
            self.process.stderr.close()
        while (line := self.err.get_nowait()) is not None:
            self.stderr_lines.append(line)
        return status


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Watcher] = []

    def start(root: Path, loop: str, *args: str) -> Watcher:
        watcher = Watcher(str(root), "--loop", loop, "--json", "--debounce", "0.1", *args)
        started.append(watcher)
        watcher.stderr_line("watching ")
        return watcher

    yield start
    for watcher in started:
        watcher.finish(signal.SIGKILL)


def pairs(events: list[Event]) -> list[tuple[str, str]]:
    return [(e["event"], e["path"]) for e in events]


def write(path: Path, text: str = "x\n") -> None:
    path.write_text(text)


@pytest.mark.parametrize("loop", LOOPS)
def test_nested_mkdir_is_rescanned(start: Any, tmp_path: Path, loop: str) -> None:
    watcher = start(tmp_path, loop)
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)  # b and c exist before a is watched
    write(tmp_path / "a" / "b" / "c" / "f.txt")
    seen = watcher.until("created", "a/b/c/f.txt")
    assert pairs(seen) == [
        ("created", "a"),
        ("created", "a/b"),
        ("created", "a/b/c"),
        ("created", "a/b/c/f.txt"),
    ]
    assert [e["dir"] for e in seen] == [True, True, True, False]
    write(tmp_path / "a" / "b" / "c" / "later.txt")  # c got a watch of its own
    assert pairs(watcher.until("created", "a/b/c/later.txt")) == [("created", "a/b/c/later.txt")]
    assert watcher.finish() == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_renames_across_directories(start: Any, tmp_path: Path, loop: str) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    for d in (root / "x", root / "y", outside / "in" / "deep"):
        d.mkdir(parents=True)
    write(root / "x" / "f.txt")
    watcher = start(root, loop)

    (root / "x" / "f.txt").rename(root / "y" / "f.txt")
    assert watcher.until("renamed", "y/f.txt") == [
        {"event": "renamed", "path": "y/f.txt", "src": "x/f.txt", "dir": False}
    ]
    (root / "y").rename(root / "x" / "z")  # a directory, into another one
    assert watcher.until("renamed", "x/z") == [
        {"event": "renamed", "path": "x/z", "src": "y", "dir": True}
    ]
    write(root / "x" / "z" / "new.txt")  # the watch followed the directory
    assert pairs(watcher.until("created", "x/z/new.txt")) == [("created", "x/z/new.txt")]

    (root / "x" / "z").rename(outside / "gone")  # moved out: its watch is dropped
    assert pairs(watcher.until("moved_out", "x/z")) == [("moved_out", "x/z")]
    write(outside / "gone" / "unseen.txt")
    (outside / "in").rename(root / "in")  # moved in: watched from now on
    assert pairs(watcher.until("moved_in", "in")) == [("moved_in", "in")]
    write(root / "in" / "deep" / "seen.txt")
    assert pairs(watcher.until("created", "in/deep/seen.txt")) == [("created", "in/deep/seen.txt")]

    (root / "in" / "deep" / "seen.txt").unlink()
    (root / "in" / "deep").rmdir()
    assert pairs(watcher.until("deleted", "in/deep")) == [
        ("deleted", "in/deep/seen.txt"),
        ("deleted", "in/deep"),
    ]
    assert watcher.finish() == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_a_burst_is_one_line_per_window(start: Any, tmp_path: Path, loop: str) -> None:
    write(tmp_path / "big.log", "")
    watcher = Watcher(str(tmp_path), "--loop", loop, "--json", "--debounce", "1.0")
    try:
        watcher.stderr_line("watching ")
        started = time.monotonic()
        with open(tmp_path / "big.log", "a") as f:
            for i in range(1000):
                f.write(f"{i}\n")
                f.flush()  # one write(2), one IN_MODIFY each
        assert time.monotonic() - started < 0.5, "the burst must fit in one window"
        write(tmp_path / "marker")
        assert pairs(watcher.until("created", "marker")) == [
            ("modified", "big.log"),
            ("created", "marker"),
        ]
    finally:
        assert watcher.finish() == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_queue_overflow_is_recovered_by_rescanning(start: Any, tmp_path: Path, loop: str) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    watcher = start(tmp_path, loop)
    a, b = tmp_path / "a", tmp_path / "b"
    write(a)
    write(b)
    assert pairs(watcher.until("created", "b")) == [("created", "a"), ("created", "b")]
    # Stop the watcher, fill its queue past the kernel's limit, then let it go on.
    # Alternating files: the kernel merges an event identical to the last queued one.
    watcher.process.send_signal(signal.SIGSTOP)
    try:
        fds = [os.open(a, os.O_WRONLY), os.open(b, os.O_WRONLY)]
        try:
            for i in range(limit + 100):
                os.write(fds[i % 2], b"x")
        finally:
            for fd in fds:
                os.close(fd)
        (tmp_path / "during").mkdir()  # its CREATE is lost with the overflow
    finally:
        watcher.process.send_signal(signal.SIGCONT)
    seen = watcher.until("overflow", ".")
    assert seen[-1]["detail"] == "events were lost; rescanned 2 directories"
    assert set(pairs(seen[:-1])) <= {("modified", "a"), ("modified", "b")}
    write(tmp_path / "during" / "after.txt")  # the rescan watched the new directory
    assert pairs(watcher.until("created", "during/after.txt"))[-1:] == [
        ("created", "during/after.txt")
    ]
    assert watcher.finish() == 0


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_it_cleanly(start: Any, tmp_path: Path, loop: str, signum: int) -> None:
    watcher = start(tmp_path, loop)
    assert watcher.finish(signum) == 0
    name = signal.Signals(signum).name
    assert watcher.stderr_lines[-1] == f"stopping ({name})"
    assert not any("Traceback" in line for line in watcher.stderr_lines)


@pytest.mark.parametrize("loop", LOOPS)
def test_root_removed_ends_it(start: Any, tmp_path: Path, loop: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    watcher = start(root, loop)
    root.rmdir()
    assert watcher.finish(None) == 1
    assert watcher.stderr_lines[-1] == f"{root} is gone; stopping"


@pytest.mark.parametrize("loop", LOOPS)
def test_exec_runs_one_at_a_time_with_the_paths(start: Any, tmp_path: Path, loop: str) -> None:
    root, log = tmp_path / "root", tmp_path / "log"
    root.mkdir()
    # The command notes any overlap with another run of itself, and its paths.
    command = (
        f"if [ -e {tmp_path}/running ]; then echo OVERLAP >> {log}; fi; "
        f"touch {tmp_path}/running; "
        f'printf "run\\n%s\\n" "$WATCH_CHANGED" >> {log}; sleep 0.5; '
        f"rm {tmp_path}/running"
    )
    watcher = start(root, loop, "--exec", command)
    names = [f"f{i}" for i in range(6)]
    for name in names:  # six windows, while the command takes 0.5 s a run
        write(root / name)
        time.sleep(0.15)
    for name in names:
        assert watcher.until("created", name)[-1]["path"] == name
    expected = [str(root / n) for n in names]
    deadline = time.monotonic() + WAIT
    while True:  # until every path was handed to a run, and that run has ended
        lines = log.read_text().splitlines() if log.exists() else []
        all_handed = sorted(set(lines) - {"run", "OVERLAP"}) == expected
        if all_handed and not (tmp_path / "running").exists():
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    assert "OVERLAP" not in lines
    assert sorted(line for line in lines if line != "run") == expected
    assert 2 <= lines.count("run") < len(names)  # changes during a run wait for the next one
    assert watcher.finish() == 0
    assert not (tmp_path / "running").exists()


def test_exec_is_stopped_with_the_watcher(start: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    pid_file = tmp_path / "pid"
    watcher = start(root, "asyncio", "--exec", f"echo $$ > {pid_file}; exec sleep 60")
    write(root / "f")
    watcher.stderr_line("exec: ")
    deadline = time.monotonic() + WAIT
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert watcher.finish(signal.SIGINT) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


DEMO = """\
created    notes.txt
modified   notes.txt
created    src/
created    src/pkg/
created    src/pkg/sub/
created    src/pkg/sub/mod.py
created    docs/
renamed    src/pkg/sub/mod.py -> docs/mod.py
renamed    src/pkg/ -> lib/
created    lib/sub/new.py
moved out  notes.txt
moved in   incoming.txt
deleted    docs/mod.py
deleted    src/
"""


@pytest.mark.parametrize("loop", LOOPS)
def test_demo(loop: str) -> None:
    result = subprocess.run(
        [sys.executable, str(WATCH), "--loop", loop],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == DEMO
    assert result.stderr.splitlines()[-1].startswith("demo: done.")


def test_a_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "f")
    result = subprocess.run(
        [sys.executable, str(WATCH), str(tmp_path / "f")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "is not a directory: give a directory to watch" in result.stderr


def test_the_recipe_copy_is_up_to_date(tmp_path: Path) -> None:
    """The watcher owns a copy of the inotify recipe; it must match the catalog's."""
    copy = tmp_path / "inotify_recipe.py"
    subprocess.run(
        [sys.executable, "-m", "adapt", "recipes", "copy", "inotify", str(copy)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    owned = ROOT / "examples" / "inotify" / "watcher" / "inotify_recipe.py"
    assert owned.read_text() == copy.read_text(), (
        "run: python -m adapt recipes copy --force inotify " + str(owned.relative_to(ROOT))
    )
