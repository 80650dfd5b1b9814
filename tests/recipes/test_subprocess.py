"""The subprocess recipe against real child processes, on every loop."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading

import anyio
import pytest
from adapt.recipes import subprocess as recipe
from adapt.recipes.subprocess import DEVNULL, spawn

from ._example import example_main


async def test_example(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    await example_main(recipe)()
    assert capsys.readouterr().out.splitlines() == [
        "b'HELLO\\n'",
        "b'WORLD\\n'",
        "exit status 0",
    ]


CHATTY = """
import os, sys
for i in range(100_000):
    sys.stdout.write(f"line {i}\\n")
    if i % 1000 == 0:
        os.write(2, bytes(range(256)))
sys.stdout.flush()
"""


async def test_lines_and_bytes_concurrently(backend: str) -> None:
    async with spawn(sys.executable, "-c", CHATTY, stdin=DEVNULL) as child:
        assert child.stdin is None
        assert child.stdout is not None
        assert child.stderr is not None
        lines: list[bytes] = []
        errors = bytearray()

        async def read_stderr() -> None:
            assert child.stderr is not None
            while chunk := await child.stderr.read(4096):
                errors.extend(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_stderr)
            async for line in child.stdout:
                lines.append(line)
        assert await child.wait() == 0
    assert lines == [f"line {i}\n".encode() for i in range(100_000)]
    assert bytes(errors) == bytes(range(256)) * 100


async def test_wait_uses_no_thread_and_is_cancellable(backend: str) -> None:
    async with spawn("sleep", "30", stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL) as child:
        threads = set(threading.enumerate())
        with anyio.move_on_after(0.1) as scope:
            await child.wait()
        assert scope.cancelled_caught
        assert child.returncode is None
        assert set(threading.enumerate()) == threads
        child.terminate()
        assert await child.wait() == -signal.SIGTERM
        child.kill()  # reaped: a no-op, never a signal to a recycled pid
        assert await child.wait() == -signal.SIGTERM


async def test_pipes_are_enlarged(backend: str) -> None:
    # 1 MiB pipes: a fast writer fills 16 times more before the reader wakes
    async with spawn(sys.executable, "-c", "print('x' * 300_000)") as child:
        for stream in (child.stdin, child.stdout, child.stderr):
            assert stream is not None
            assert fcntl.fcntl(stream.wrapper.fileno(), fcntl.F_GETPIPE_SZ) == recipe.PIPE_SIZE
        assert child.stdin is not None
        child.stdin.close()
        assert child.stdout is not None
        assert await child.stdout.read() == b"x" * 300_000 + b"\n"
        assert await child.wait() == 0


async def test_kill(backend: str) -> None:
    async with spawn("sleep", "30") as child:
        child.kill()
        assert await child.wait() == -signal.SIGKILL


async def test_large_stdin_with_a_reader_task(backend: str) -> None:
    payload = os.urandom(10 << 20)
    async with spawn("cat") as child:
        assert child.stdin is not None
        assert child.stdout is not None
        got = bytearray()

        async def feed() -> None:
            assert child.stdin is not None
            await child.stdin.write_all(payload)  # far beyond the pipe's 64 KiB
            await child.stdin.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            while chunk := await child.stdout.read(1 << 16):
                got.extend(chunk)
    assert bytes(got) == payload
    assert child.returncode == 0


async def test_communicate_large_input_in_one_task(backend: str) -> None:
    payload = os.urandom(10 << 20)
    code = (
        "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d); "
        "sys.stderr.write('done')"
    )
    async with spawn(sys.executable, "-c", code) as child:
        out, err = await child.communicate(payload)
    assert out == payload
    assert err == b"done"
    assert child.returncode == 0


async def test_communicate_when_the_child_stops_reading(backend: str) -> None:
    async with spawn(sys.executable, "-c", "print('bye')") as child:
        out, err = await child.communicate(b"x" * (4 << 20))  # BrokenPipe: ignored
    assert (out, err) == (b"bye\n", b"")


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="decode"):
        spawn("true", text=True)
    with pytest.raises(ValueError, match="bufsize=0"):
        spawn("true", bufsize=1)


def test_spawn_refuses_errors_like_text() -> None:
    # Popen(errors=...) opens text pipes just as text=True does; spawn must
    # refuse it before a child starts, and leak no pidfd or pipe
    with pytest.raises(ValueError, match="decode"):
        spawn("true", errors="strict")
