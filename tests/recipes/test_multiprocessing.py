"""The multiprocessing recipe against real Pipe()s, Listeners and Clients,
with blocking peers in other processes."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
from multiprocessing.connection import AuthenticationError, Client, Pipe

import anyio
import pytest
from adapt.recipes import multiprocessing as recipe
from adapt.recipes.multiprocessing import Conn, Listener, connect

from .._util import held_clock
from ._example import example_main

BIG = bytes(range(256)) * 40_000  # 10 MB


async def test_example(backend: str) -> None:
    await example_main(recipe)()


async def test_big_messages_both_ways_on_one_loop_without_stalling(backend: str) -> None:
    a, b = Pipe()
    gaps: list[float] = []
    async with Conn(a) as left, Conn(b) as right, anyio.create_task_group() as tg:

        async def ticker() -> None:  # (a wait for a CPU is not a stall: see held_clock)
            last = held_clock()
            while True:
                await anyio.sleep(0.001)
                now = held_clock()
                gaps.append(now - last)
                last = now

        tg.start_soon(ticker)
        tg.start_soon(left.send, {"blob": BIG, "n": 1})
        tg.start_soon(right.send_bytes, BIG[::-1])
        assert await right.recv() == {"blob": BIG, "n": 1}
        assert await left.recv_bytes() == BIG[::-1]
        tg.cancel_scope.cancel()
    assert len(gaps) > 3
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f} s"


async def test_blocking_peer_in_another_process(backend: str) -> None:
    ours, theirs = Pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", ECHO_PEER, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    try:
        async with Conn(ours) as conn:
            for obj in ({"x": [1, 2.5, "three"]}, b"", "text" * 1000):
                await conn.send(obj)
                assert await conn.recv() == obj
            assert await conn.recv_bytes() == BIG
            await conn.send_bytes(BIG)
            assert await conn.recv() == len(BIG)
            with pytest.raises(EOFError):
                await conn.recv()
    finally:
        await anyio.to_thread.run_sync(child.wait, 10)
    assert child.returncode == 0


# a plain blocking Connection in another process
ECHO_PEER = textwrap.dedent(
    """
    import sys
    from multiprocessing.connection import Connection
    conn = Connection(int(sys.argv[1]))
    for _ in range(3):
        conn.send(conn.recv())
    conn.send_bytes(bytes(range(256)) * 40_000)
    conn.send(len(conn.recv_bytes()))
    conn.close()
    """
)


async def test_empty_messages(backend: str) -> None:
    a, b = Pipe()
    async with Conn(a) as left, Conn(b) as right:
        await left.send_bytes(b"")
        await left.send_bytes(b"after")
        assert await right.recv_bytes() == b""
        assert await right.recv_bytes() == b"after"


async def test_recv_bytes_maxlength_closes_like_the_library(backend: str) -> None:
    a, b = Pipe()
    async with Conn(b) as conn:
        a.send_bytes(b"x" * 100)
        with pytest.raises(OSError, match="bad message length"):
            await conn.recv_bytes(maxlength=10)
    a.close()


async def test_cancelled_recv_resumes_and_into_inner_gives_a_blocking_conn(
    backend: str,
) -> None:
    a, b = Pipe()
    async with Conn(a) as left:
        conn_b = Conn(b)
        # half a frame arrives, the receiver is cancelled, the rest follows
        frame = b"\x00\x00\x00\x06abcdef"
        with socket.socket(fileno=os.dup(a.fileno())) as raw:
            raw.setblocking(True)
            raw.sendall(frame[:7])
            with anyio.move_on_after(0.05) as scope:
                await conn_b.recv_bytes()
            assert scope.cancelled_caught
            raw.sendall(frame[7:])
        assert await conn_b.recv_bytes() == b"abcdef"
        plain = conn_b.into_inner()
        assert os.get_blocking(plain.fileno())
        await left.send("sync again")
        assert plain.recv() == "sync again"
        plain.close()


async def test_listener_and_sync_client_in_another_process(backend: str) -> None:
    with Listener(authkey=b"k3y") as listener:
        child = subprocess.Popen(
            [sys.executable, "-c", CLIENT, repr(listener.address), "k3y"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            async with await listener.accept() as conn:
                assert await conn.recv() == "hello"
                await conn.send_bytes(BIG)
                assert await conn.recv() == len(BIG)
        finally:
            out, _ = await anyio.to_thread.run_sync(child.communicate)
        assert child.returncode == 0
        assert out == "client ok\n"


CLIENT = textwrap.dedent(
    """
    import ast, sys
    from multiprocessing.connection import Client
    with Client(ast.literal_eval(sys.argv[1]), authkey=sys.argv[2].encode()) as c:
        c.send("hello")
        c.send(len(c.recv_bytes()))
    print("client ok")
    """
)


async def test_connect_to_a_sync_listener(backend: str) -> None:
    from multiprocessing.connection import Listener as SyncListener

    with SyncListener(("127.0.0.1", 0), authkey=b"k") as sync:
        async with anyio.create_task_group() as tg:

            def serve() -> None:  # the blocking server, in a thread
                with sync.accept() as c:
                    c.send(c.recv() + 1)

            tg.start_soon(anyio.to_thread.run_sync, serve)
            async with await connect(sync.address, authkey=b"k") as conn:
                await conn.send(41)
                assert await conn.recv() == 42


async def test_wrong_authkey_fails_both_ways(backend: str) -> None:
    with Listener(authkey=b"right") as listener:
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                with pytest.raises(AuthenticationError):
                    await listener.accept()

            tg.start_soon(serve)
            with pytest.raises(AuthenticationError):
                await connect(listener.address, authkey=b"wrong")


async def test_cancelled_accept_leaves_no_thread_blocked(backend: str) -> None:
    # one cancel while no client came, one during a handshake the client
    # never answers: the leak guard checks that no thread stays behind
    with Listener(("127.0.0.1", 0), authkey=b"k") as listener:
        with anyio.move_on_after(0.05) as scope:
            await listener.accept()
        assert scope.cancelled_caught
        with socket.create_connection(listener.address) as silent:
            with anyio.move_on_after(0.2) as scope:
                await listener.accept()  # stuck in the handshake, in a thread
            assert scope.cancelled_caught
            silent.settimeout(10)
            # the challenge (if the thread got to send it), then the end:
            # the socket was shut down, which ended the thread's wait
            received = b"".join(iter(lambda: silent.recv(100), b""))
            assert received == b"" or received.startswith(b"\x00\x00\x00")
        # the listener still works after a cancelled accept
        async with anyio.create_task_group() as tg:

            async def client() -> None:
                c = await anyio.to_thread.run_sync(lambda: Client(listener.address, authkey=b"k"))
                with c:
                    c.send("after")

            tg.start_soon(client)
            async with await listener.accept() as conn:
                assert await conn.recv() == "after"


def test_unix_listener_removes_its_socket_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "l.sock")
    with Listener(path) as listener:
        assert listener.address == path
        assert os.path.exists(path)
    assert not os.path.exists(path)


async def test_recv_bytes_maxlength_is_checked_before_the_body_is_allocated(
    backend: str,
) -> None:
    # Connection.recv_bytes(maxlength) refuses an oversized frame from its
    # header ("bad message length"), before allocating the body; a header
    # announcing 2**50 bytes must not turn into a MemoryError
    a, b = Pipe()
    with b:
        b.send_bytes(b"")  # a sync peer writes the frame header by hand below
        async with Conn(a) as conn:
            assert await conn.recv_bytes(10) == b""
            b._send(struct.pack("!iQ", -1, 1 << 50))  # type: ignore[attr-defined]
            with pytest.raises(OSError, match="bad message length"):
                await conn.recv_bytes(1000)
