"""The console recipe: a real child process whose stdin is a pty, a pipe, a
regular file or /dev/null."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from adapt.recipes import console as recipe

from adapt import BufferedStream, run_sync

from ._child import BACKENDS, example_command, run_example

# The child reads a name while a ticker task runs (the loop is not blocked
# by the wait), then lines until the end of input, then reports.
CHILD = textwrap.dedent(
    """
    import os, sys, threading
    import anyio
    from adapt.recipes import console

    async def main():
        ticks = 0
        async def tick():
            nonlocal ticks
            while True:
                await anyio.sleep(0.005)
                ticks += 1
        mode = "thread" if console.stdin().threaded else "poll"
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            name = await console.ainput("name? ")
            tg.cancel_scope.cancel()
        print(f"hello {name} mode={mode} threads={threading.active_count()}", flush=True)
        print(f"loop ran={ticks > 3}", flush=True)
        async for line in console.lines():
            print(f"got {line!r}", flush=True)
        try:  # a terminal reads on after Ctrl-D; a pipe's end is final
            print(f"more={await console.ainput('more? ')}", flush=True)
            await console.ainput("more? ")
        except EOFError:
            print("eof", flush=True)
        print(f"stdin, stdout blocking: {os.get_blocking(0)} {os.get_blocking(1)}", flush=True)

    b = sys.argv[1]
    anyio.run(main, backend="trio" if b == "trio" else "asyncio",
              backend_options={} if b == "trio" else {"use_uvloop": b == "uvloop"})
    """
)


class Terminal:
    """A child process on a real pty; we hold the master side."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = os.openpty()
        try:
            self.proc = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, start_new_session=True
            )
        finally:
            os.close(slave)
        self.stream = BufferedStream(master)

    async def expect(self, text: bytes) -> bytes:
        """What the child printed (and the terminal echoed) up to ``text``."""
        return await self.stream.readuntil(text)

    async def type(self, keys: bytes) -> None:
        await self.stream.write_all(keys)

    async def finish(self) -> tuple[bytes, int, bytes]:
        rest = await self.stream.read()  # to the end: EIO once the child is gone
        await self.stream.aclose()
        code = await run_sync(self.proc.wait, 20)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        return rest, code, err


async def test_terminal_stdin_is_polled_without_a_thread(backend: str) -> None:
    term = Terminal([sys.executable, "-c", CHILD, backend])
    try:
        await term.expect(b"name? ")
        await anyio.sleep(0.1)  # the child's loop runs while it waits
        await term.type(b"bob\n")
        out = await term.expect(b"loop ran=True\r\n")
        assert b"hello bob mode=poll threads=1\r\n" in out
        await term.type(b"one\ntwo\n")  # one write, two lines
        await term.expect(b"got 'two\\n'")
        await term.type(b"\x04")  # Ctrl-D at the start of a line: end of input
        # a terminal reads on after Ctrl-D (as input() does): the prompt waits
        await term.expect(b"more? ")
        await term.type(b"again\n")
        await term.expect(b"more=again\r\nmore? ")
        await term.type(b"\x04")
        await term.expect(b"eof")
    finally:
        rest, code, err = await term.finish()
    assert code == 0, err.decode()
    assert b"stdin, stdout blocking: True True" in rest


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipe_stdin_is_polled(backend: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, backend],
        input=b"carol\nx\ny",  # the last line without "\n"
        capture_output=True,
        timeout=50,
        check=True,
    ).stdout.decode()
    assert "hello carol mode=poll threads=1" in out
    assert "got 'x\\n'\ngot 'y'\nmore? eof\n" in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_regular_file_stdin_is_read_in_a_thread(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_text("dave\nfirst\nsecond\n")
    with path.open("rb", buffering=0) as f:
        f.readline()  # stdin's offset is shared: the child starts at "first"
        out = subprocess.run(
            [sys.executable, "-c", CHILD, backend],
            stdin=f,
            capture_output=True,
            timeout=50,
            check=True,
        ).stdout.decode()
    assert "hello first mode=thread" in out
    assert "got 'second\\n'\nmore? eof\n" in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_dev_null_stdin_ends_at_once(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode != 0
    assert b"EOFError: end of input" in proc.stderr


async def test_example_on_a_terminal(backend: str) -> None:
    term = Terminal(example_command(recipe, backend))
    try:
        await term.expect(b"name? ")
        await term.type(b"erin\n")
        await term.expect(b"hello erin\r\n")
        await term.type(b"abc\n")
        await term.expect(b"got abc\r\n")
        await term.type(b"\x04")
        await term.expect(b"example ok")
    finally:
        _, code, err = await term.finish()
    assert code == 0, err.decode()


@pytest.mark.parametrize("backend", BACKENDS)
def test_example_with_a_regular_file(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_text("frank\nl1\nl2\n")
    with path.open("rb") as f:
        out = run_example(recipe, backend, stdin=f)
    assert out == "name? hello frank\ngot l1\ngot l2\nexample ok\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_long_line_on_pipe_stdin_is_read(backend: str) -> None:
    # lines() is "for line in sys.stdin for async code": a 100 KB line (one
    # JSON document, say) piped in must come through, as with sys.stdin and
    # as it does when stdin is a regular file (the threaded path)
    long = "x" * 100_000
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend],
        input=f"carol\n{long}\n".encode(),
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-400:]
    assert f"got '{long}\\n'" in proc.stdout.decode()
