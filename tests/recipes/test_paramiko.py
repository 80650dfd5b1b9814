"""The paramiko recipe against a real OpenSSH sshd, on every loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

import anyio
import paramiko
import pytest
from adapt.recipes import paramiko as recipe
from adapt.recipes.paramiko import Process, connect, exec_command

from adapt import Async, WouldBlock, run_sync

from ._example import example_main
from .servers import Sshd


async def _client(sshd: Sshd) -> paramiko.SSHClient:
    client: paramiko.SSHClient = await connect(
        "127.0.0.1",
        sshd.port,
        sshd.user,
        key_filename=str(sshd.client_key),
        policy=paramiko.AutoAddPolicy(),
    )
    return client


async def test_example(backend: str, sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    given = {"host": "127.0.0.1", "port": sshd.port, "user": sshd.user}
    main = example_main(recipe, key_filename=str(sshd.client_key), **given)
    await main()
    assert capsys.readouterr().out == "b'got hello\\n' b'oops\\n'\n0\n"


async def test_stdout_and_stderr_separately_and_exit_status(backend: str, sshd: Sshd) -> None:
    client = await _client(sshd)
    try:
        proc = await exec_command(
            client, "for i in $(seq 500); do echo out $i; echo err $i >&2; done; exit 3"
        )
        try:
            out = await proc.read_all()
            err = await proc.read_all(stderr=True)
            assert await proc.wait() == 3
        finally:
            proc.close()
    finally:
        client.close()
    assert out.decode().splitlines() == [f"out {i}" for i in range(1, 501)]
    assert err.decode().splitlines() == [f"err {i}" for i in range(1, 501)]


async def test_stderr_only_output_does_not_spin_a_stdout_read(backend: str, sshd: Sshd) -> None:
    client = await _client(sshd)
    try:
        proc = await exec_command(client, "echo first >&2; sleep 0.6; echo late")
        try:
            cpu = time.process_time()
            assert await proc.read(100) == b"late\n"
            assert time.process_time() - cpu < 0.3  # waited, did not spin
            assert await proc.read(100, stderr=True) == b"first\n"  # kept aside
            assert await proc.wait() == 0
        finally:
            proc.close()
    finally:
        client.close()


async def test_plain_read_with_spins_on_stderr_only_output(backend: str, sshd: Sshd) -> None:
    # What the recipe fixes: stderr data makes the channel's fd readable, so
    # a stdout read that only checks recv_ready() retries without waiting.
    client = await _client(sshd)
    try:
        chan = await run_sync(lambda: client.get_transport().open_session())  # type: ignore[union-attr]
        plain = Async(chan, nonblocking=False)
        attempts = 0

        def recv(c: paramiko.Channel) -> bytes:
            nonlocal attempts
            attempts += 1
            if not c.recv_ready():
                raise WouldBlock
            return c.recv(100)

        try:
            chan.exec_command("echo first >&2; sleep 0.6; echo late")
            assert await plain.read_with(recv) == b"late\n"
            assert attempts > 1000  # a busy loop for 0.6 s
        finally:
            plain.into_inner()
            chan.close()
    finally:
        client.close()


async def test_write_into_a_full_window(backend: str, sshd: Sshd) -> None:
    client = await _client(sshd)
    try:
        # the command reads nothing for a while: the window (2 MiB) fills
        proc = await exec_command(client, "sleep 0.5; wc -c")
        try:
            size = 6 * 1024 * 1024
            with anyio.fail_after(30):
                await proc.write_all(b"x" * size)
                proc.close_stdin()
                assert await proc.read_all() == b"%d\n" % size
                assert await proc.wait() == 0
        finally:
            proc.close()
    finally:
        client.close()


async def test_plain_write_with_on_the_channel_is_refused(backend: str, sshd: Sshd) -> None:
    # The channel's fd is a pipe's read end: a wait for it to become
    # writable would never end (it parked forever on a full window), so
    # adapt refuses it with an error that names the fix.
    client = await _client(sshd)
    try:
        chan = await run_sync(lambda: client.get_transport().open_session())  # type: ignore[union-attr]
        plain = Async(chan, nonblocking=False)

        def send(c: paramiko.Channel) -> int:
            if not c.send_ready():
                raise WouldBlock
            return c.send(b"x" * 65536)

        try:
            chan.exec_command("sleep 0.3; cat > /dev/null")
            with anyio.fail_after(10), pytest.raises(ValueError, match="read-only") as info:  # noqa: PT012
                while True:
                    await plain.write_with(send)
            assert "wait='readable'" in str(info.value)
        finally:
            plain.into_inner()
            chan.close()
    finally:
        client.close()


async def test_the_channel_timeout_is_left_alone(backend: str, sshd: Sshd) -> None:
    client = await _client(sshd)
    try:
        proc = await exec_command(client, "cat")
        try:
            assert proc.chan.gettimeout() is None  # the recipe's wrapper changed nothing
            # A Channel has settimeout() but is no socket: the default used to
            # set a timeout of 0, and a blocking recv elsewhere then raised
            # socket.timeout at once.  Now the choice is the caller's.
            with pytest.raises(TypeError, match="nonblocking=False"):
                Async(proc.chan)
            assert proc.chan.gettimeout() is None
            chosen = Async(proc.chan, nonblocking=True)  # O_NONBLOCK on its fd only
            assert proc.chan.gettimeout() is None
            chosen.into_inner()
        finally:
            proc.close()
    finally:
        client.close()


async def test_cancelled_read_loses_nothing(backend: str, sshd: Sshd) -> None:
    client = await _client(sshd)
    try:
        proc = await exec_command(client, "sleep 0.4; echo one; sleep 0.3; echo two")
        try:
            with anyio.move_on_after(0.2):
                await proc.read()
            assert await proc.read_all() == b"one\ntwo\n"
            assert await proc.wait() == 0
        finally:
            proc.close()
    finally:
        client.close()


async def test_bad_key_is_an_error(backend: str, sshd: Sshd) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        await connect(
            "127.0.0.1",
            sshd.port,
            sshd.user,
            key_filename=str(sshd.client_key.parent / "host_key"),
            policy=paramiko.AutoAddPolicy(),
        )


async def test_write_all_of_a_large_buffer_is_not_quadratic(backend: str, sshd: Sshd) -> None:
    # paramiko sends at most one packet (32 KiB) per chan.send(): write_all()
    # must not copy the whole rest of the buffer for each packet (32 MiB =
    # 1024 packets, about 16 GiB copied on the loop thread).  The yardstick:
    # the same bytes sent by hand in packet-sized pieces through write().
    client = await _client(sshd)
    size = 32 << 20
    data = b"x" * size

    async def through(send: Callable[[Process], Awaitable[None]]) -> float:
        proc = await exec_command(client, "wc -c")
        try:
            start = time.process_time()
            with anyio.fail_after(120):
                await send(proc)
            spent = time.process_time() - start
            proc.close_stdin()
            assert await proc.read_all() == b"%d\n" % size
            return spent
        finally:
            proc.close()

    async def by_hand(proc: Process) -> None:
        view = memoryview(data)
        while view:
            view = view[await proc.write(bytes(view[:32768])) :]

    try:
        reference = await through(by_hand)
        whole = await through(lambda proc: proc.write_all(data))
        assert whole < 4 * reference + 0.2, (whole, reference)
    finally:
        client.close()


async def test_a_write_waiting_for_a_shut_window_can_be_cancelled(backend: str, sshd: Sshd) -> None:
    # The command never reads stdin: the window (2 MiB) stays shut.  A
    # timeout around the write must end it (the documented cost: the data
    # of the write in the worker thread may still go out later), not wait
    # for a window that may never open.
    client = await _client(sshd)
    try:
        proc = await exec_command(client, "sleep 6")
        try:
            start = time.monotonic()
            # (OSError: the channel closed when the command ended)
            with contextlib.suppress(OSError), anyio.move_on_after(0.5):
                await proc.write_all(b"x" * (4 << 20))
            took = time.monotonic() - start
            assert took < 3, f"the cancelled write took {took:.1f} s: until the command ended"
        finally:
            proc.close()
    finally:
        client.close()


async def test_a_connect_to_a_silent_server_can_be_cancelled(
    backend: str, silent_port: int
) -> None:
    # The server accepts the TCP connection and never sends its banner:
    # paramiko's thread waits banner_timeout (6 s here, 15 by default).  A
    # timeout around connect() must end it, not wait for paramiko to give up.
    raised: BaseException | None = None
    start = time.monotonic()
    try:
        with anyio.move_on_after(0.5):
            await connect(
                "127.0.0.1",
                silent_port,
                "nobody",
                policy=paramiko.AutoAddPolicy(),
                banner_timeout=6,
            )
    except paramiko.SSHException as exc:
        raised = exc
    took = time.monotonic() - start
    assert took < 3, f"the cancelled connect took {took:.1f} s, then raised {raised!r}"
