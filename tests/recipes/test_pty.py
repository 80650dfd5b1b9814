"""The pty recipe driving bc and python3 -i, with and without pexpect."""

from __future__ import annotations

import signal
import sys
import time

import anyio
import pexpect
import pytest
from adapt.recipes import pty as recipe
from adapt.recipes.pty import Pty
from ptyprocess import PtyProcess

from ._example import example_main


async def test_example(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    await example_main(recipe)()
    assert capsys.readouterr().out.splitlines() == [str(2**64), "exit status 0"]


async def test_python_interactive(backend: str) -> None:
    async with Pty.spawn(sys.executable, "-q", "-i") as py:
        await py.expect_exact(b">>> ")
        await py.sendline("x = 6 * 7")
        await py.expect_exact(b">>> ")
        await py.sendline("print(x)")
        match = await py.expect(rb"\r\n(\d+)\r\n>>> ")
        assert match[1] == b"42"
        await py.sendline("raise SystemExit(3)")
        assert await py.wait() == 3


async def test_end_of_output_and_before(backend: str) -> None:
    async with Pty.spawn("sh", "-c", "echo one; echo two") as sh:
        await sh.expect(rb"one\r\n")
        assert sh.before == b""
        with pytest.raises(EOFError, match="ended before"):
            await sh.expect(rb"three")
        assert sh.before == b"two\r\n"
        assert await sh.wait() == 0


async def test_cancelled_expect_keeps_what_it_read(backend: str) -> None:
    async with Pty.spawn("sh", "-c", "echo first; sleep 0.3; echo second") as sh:
        with anyio.move_on_after(0.15):
            await sh.expect(rb"second")
        await sh.expect(rb"first\r\n")
        await sh.expect(rb"second\r\n")
        assert await sh.wait() == 0


async def test_close_hangs_up_a_child_that_does_not_end(backend: str) -> None:
    session = Pty.spawn("sleep", "30")
    await session.aclose()
    assert session.returncode == -signal.SIGHUP


async def test_adopt_pexpect_keeps_its_buffer_and_never_sleeps(backend: str) -> None:
    child = pexpect.spawn("bc", ["-q"], env={"TERM": "dumb"})
    try:
        child.sendline("10*10")
        time.sleep(0.3)  # the echo and the answer arrive together...
        child.expect_exact("10*10")  # ...so pexpect buffers the answer
        assert child.buffer.startswith(b"\r\n100")
        async with Pty.adopt(child) as bc:
            await bc.expect(rb"100\r\n")
            start = time.monotonic()
            for i in range(20):
                await bc.sendline(f"{i}+1")
                await bc.expect(rb"\r\n%d\r\n" % (i + 1))
            # pexpect's send would sleep delaybeforesend (50 ms) on the loop each time
            assert time.monotonic() - start < 20 * child.delaybeforesend
            await bc.sendline("quit")
            assert await bc.wait() == 0
        assert not child.isalive()
        assert child.exitstatus == 0
    finally:
        child.close()


async def test_adopt_ptyprocess_no_false_eof_no_blocking_isalive(backend: str) -> None:
    proc = PtyProcess.spawn(["sh", "-c", "sleep 0.2; echo late; exit 4"])
    try:
        async with Pty.adopt(proc) as session:
            # ptyprocess's own read() on this non-blocking fd raises EOFError now
            with pytest.raises(EOFError):
                proc.read()
            proc.flag_eof = False  # undo that false EOF, or isalive() would block
            await session.expect(rb"late\r\n")
            assert await session.wait() == 4
        assert proc.exitstatus == 4
    finally:
        proc.close()
