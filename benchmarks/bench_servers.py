"""Server clients: the recipes against each library's own async peer, same server.

Starts PostgreSQL 15, mosquitto, redis-server and sshd on loopback (the
fixtures of ``tests/recipes/servers.py``) and runs, interleaved round by
round on asyncio, each recipe and its peer:

* psycopg2 ``SELECT 1`` round trips/s: the recipe, aiopg, psycopg 3's
  ``AsyncConnection`` (all with the simple query protocol; see
  :func:`pg_cases`), and the client CPU time per query of each;
* paho QoS 0 messages/s received (from a publisher in another process): the
  recipe, aiomqtt;
* pyzmq REQ/REP round trips/s (an echo in another process): the recipe,
  ``zmq.asyncio``;
* redis ``GET`` round trips/s: the recipe, ``redis.asyncio``;
* paramiko stdout MB/s (``head -c``): the recipe, blocking paramiko reads in
  a worker thread (``asyncio.to_thread``).

The psycopg2 and redis suites also run a **callback adapter**: the leanest
adapter asyncio allows, written for this one loop -- a reader callback
registered for the connection's whole life, and the library's call made in
that callback (aiopg's scheme, without its layers).  It is no recipe: it
gives up what adapt guarantees (a cancelled wait consumes nothing; nothing
stays registered between waits, so a close or a reused fd number cannot
leave a stale registration).  Its ratio to the peer is the most any asyncio
adapter reaches against that peer on this machine and server.

Medians of interleaved rounds; ratios against the peers.

    python benchmarks/bench_servers.py            # full run (~2 minutes)
    python benchmarks/bench_servers.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.recipes.servers

import aiomqtt
import aiopg
import paramiko
import psycopg
import redis
import redis.asyncio
import zmq
import zmq.asyncio
from _harness import interleave, note_load, pin_malloc, report
from adapt.recipes import paho_mqtt, psycopg2
from adapt.recipes import paramiko as paramiko_recipe
from adapt.recipes import redis as redis_recipe
from adapt.recipes import zmq as zmq_recipe
from psycopg2.extensions import POLL_OK

from tests.recipes.servers import (
    Postgres,
    Sshd,
    start_mosquitto,
    start_postgres,
    start_redis,
    start_sshd,
)

ZMQ_ECHO = """
import sys, zmq
s = zmq.Context().socket(zmq.REP)
s.bind(f"tcp://127.0.0.1:{sys.argv[1]}")
while True:
    s.send(s.recv())
"""

MQTT_PUBLISHER = """
import sys, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
sys.stdin.readline()  # go
for i in range(int(sys.argv[3])):
    c.publish(sys.argv[2], b"x" * 64, qos=0)
c.publish(sys.argv[2], b"end", qos=1).wait_for_publish()
c.disconnect()
c.loop_stop()
"""


def timed(coro: Callable[[], Coroutine[Any, Any, int]]) -> float:
    """Run ``coro`` on asyncio; operations per second."""

    async def main() -> float:
        start = time.perf_counter()
        n = await coro()
        return n / (time.perf_counter() - start)

    return asyncio.run(main())


#: the case name of the leanest asyncio adapter (see the module docstring)
CALLBACK_ADAPTER = "callback adapter (no recipe: the ceiling)"


def print_ceiling(medians: dict[str, float], targets: list[Any]) -> None:
    """Each target's peer against the callback adapter, if that ran."""
    if CALLBACK_ADAPTER not in medians:
        return
    for _case, peer, minimum in targets:
        ratio = medians[CALLBACK_ADAPTER] / medians[peer]
        print(f"  ceiling: {CALLBACK_ADAPTER} / {peer} = {ratio:.2f}x (the target: {minimum}x)")


# -- psycopg2 ---------------------------------------------------------------------


#: client CPU seconds per query of each psycopg2 case, by round (see pg_cases)
PG_CPU: dict[str, list[float]] = {}


def pg_cases(pg: Postgres, n: int) -> dict[str, Callable[[], float]]:
    """The same ``SELECT 1`` and ``fetchall()`` through each client, same server.

    Only the query loop is timed (not the connect).  Every case sends the
    query text with the simple query protocol, so the server does the same
    work for each: psycopg 3 would otherwise switch to a server-side
    prepared statement after 5 runs (``prepare_threshold``), which psycopg2
    and aiopg cannot use -- a saving on the server, not in the client.  That
    variant runs too, named so, without a target.  Each case also records
    its client CPU time per query in :data:`PG_CPU`.
    """

    def timed_loop(name: str, connect: Callable[[], Coroutine[Any, Any, Any]]) -> float:
        async def main() -> float:
            query, close = await connect()
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                await query()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            await close()
            PG_CPU.setdefault(name, []).append(cpu / n)
            return n / elapsed

        return asyncio.run(main())

    async def recipe() -> Any:
        db = await psycopg2.connect(pg.dsn)

        async def query() -> None:
            await db.fetchall("SELECT 1")

        async def close() -> None:
            db.close()

        return query, close

    async def peer_aiopg() -> Any:
        conn = await aiopg.connect(pg.dsn)
        cur = await conn.cursor()

        async def query() -> None:
            await cur.execute("SELECT 1")
            await cur.fetchall()

        async def close() -> None:
            cur.close()
            await conn.close()

        return query, close

    def peer_psycopg3(prepare_threshold: int | None) -> Callable[[], Coroutine[Any, Any, Any]]:
        async def connect() -> Any:
            conn = await psycopg.AsyncConnection.connect(
                pg.dsn, autocommit=True, prepare_threshold=prepare_threshold
            )
            cur = conn.cursor()

            async def query() -> None:
                await cur.execute("SELECT 1")
                await cur.fetchall()

            async def close() -> None:
                await cur.close()
                await conn.close()

            return query, close

        return connect

    async def callback_adapter() -> Any:
        db = await psycopg2.connect(pg.dsn)
        conn, loop = db.conn, asyncio.get_running_loop()
        parked: list[asyncio.Future[None]] = []

        def on_readable() -> None:
            if parked and conn.poll() == POLL_OK:
                parked.pop().set_result(None)

        loop.add_reader(conn.fileno(), on_readable)

        async def query() -> None:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            if conn.poll() != POLL_OK:  # POLL_READ: a SELECT 1 is sent at once
                parked.append(loop.create_future())
                await parked[-1]
            cursor.fetchall()

        async def close() -> None:
            loop.remove_reader(conn.fileno())
            db.close()

        return query, close

    cases = {
        "psycopg2 recipe": recipe,
        "aiopg": peer_aiopg,
        "psycopg 3 AsyncConnection": peer_psycopg3(None),
        "psycopg 3, server-side prepared (its default)": peer_psycopg3(5),
        CALLBACK_ADAPTER: callback_adapter,
    }
    return {name: functools.partial(timed_loop, name, case) for name, case in cases.items()}


def pg_cpu_medians() -> dict[str, float]:
    """Queries per client CPU second, the median of the recorded rounds
    (the first, the warm-up, left out)."""
    return {name: 1 / statistics.median(cpus[1:]) for name, cpus in PG_CPU.items()}


# -- paho-mqtt --------------------------------------------------------------------


Receive = Callable[[int, str, asyncio.Event], Coroutine[Any, Any, int]]


def mqtt_case(port: int, n: int, receive: Receive) -> float:
    """Messages/s received by ``receive`` from a publisher process."""
    topic = f"bench/{uuid.uuid4().hex}"

    async def main() -> float:
        ready = asyncio.Event()
        task = asyncio.ensure_future(receive(port, topic, ready))
        await ready.wait()
        publisher = subprocess.Popen(
            [sys.executable, "-c", MQTT_PUBLISHER, str(port), topic, str(n)],
            stdin=subprocess.PIPE,
        )
        await asyncio.sleep(0.3)  # connected
        assert publisher.stdin is not None
        start = time.perf_counter()
        publisher.stdin.write(b"go\n")
        publisher.stdin.flush()
        got = await task
        rate = got / (time.perf_counter() - start)
        publisher.stdin.close()
        publisher.wait()
        return rate

    return asyncio.run(main())


async def mqtt_recipe(port: int, topic: str, ready: asyncio.Event) -> int:
    client = paho_mqtt.MQTT(maxsize=1000)
    await client.connect("127.0.0.1", port)
    await client.subscribe(topic, qos=1)
    ready.set()
    got = 0
    async for message in client.messages():
        if message.payload == b"end":
            break
        got += 1
    await client.disconnect()
    return got


async def mqtt_aiomqtt(port: int, topic: str, ready: asyncio.Event) -> int:
    got = 0
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            if message.payload == b"end":
                break
            got += 1
    return got


# -- zmq ------------------------------------------------------------------------------


def zmq_cases(port: int, n: int) -> dict[str, Callable[[], float]]:
    address = f"tcp://127.0.0.1:{port}"

    async def recipe() -> int:
        ctx = zmq.Context()
        sock = zmq_recipe.Socket(ctx.socket(zmq.REQ))
        sock.sock.connect(address)
        for _ in range(n):
            await sock.send(b"x" * 64)
            await sock.recv()
        sock.close(0)
        ctx.term()
        return n

    async def peer() -> int:
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.REQ)
        sock.connect(address)
        for _ in range(n):
            await sock.send(b"x" * 64)
            await sock.recv()
        sock.close(0)
        ctx.term()
        return n

    return {"zmq recipe": lambda: timed(recipe), "zmq.asyncio": lambda: timed(peer)}


# -- redis ----------------------------------------------------------------------------


def redis_cases(port: int, n: int) -> dict[str, Callable[[], float]]:
    async def recipe() -> int:
        async with redis_recipe.Client(port=port) as r:
            await r.execute("SET", "bench", "x" * 64)
            for _ in range(n):
                await r.execute("GET", "bench")
        return n

    async def peer() -> int:
        r = redis.asyncio.Redis(port=port)
        await r.set("bench", "x" * 64)
        for _ in range(n):
            await r.get("bench")
        await r.aclose()
        return n

    async def callback_adapter() -> int:
        r = redis.Redis(port=port)
        r.set("bench", "x" * 64)
        conn = r.connection_pool.get_connection()
        loop = asyncio.get_running_loop()
        parked: list[asyncio.Future[Any]] = []

        def on_readable() -> None:
            if parked and conn.can_read(timeout=0):
                parked.pop().set_result(r.parse_response(conn, "GET"))

        loop.add_reader(conn._sock.fileno(), on_readable)
        for _ in range(n):
            conn.send_packed_command(conn.pack_commands([("GET", "bench")]))
            parked.append(loop.create_future())
            await parked[-1]
        loop.remove_reader(conn._sock.fileno())
        r.connection_pool.release(conn)
        r.close()
        return n

    return {
        "redis recipe": lambda: timed(recipe),
        "redis.asyncio": lambda: timed(peer),
        CALLBACK_ADAPTER: lambda: timed(callback_adapter),
    }


# -- paramiko -------------------------------------------------------------------------


def ssh_cases(sshd: Sshd, size: int) -> dict[str, Callable[[], float]]:
    def client() -> paramiko.SSHClient:
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        c.connect(
            "127.0.0.1",
            sshd.port,
            sshd.user,
            key_filename=str(sshd.client_key),
            allow_agent=False,
            look_for_keys=False,
        )
        return c

    command = f"head -c {size} /dev/zero"

    def mb_per_s(read: Callable[[paramiko.SSHClient], Coroutine[Any, Any, int]]) -> float:
        c = client()  # connecting is not what is measured
        try:

            async def main() -> float:
                start = time.perf_counter()
                got = await read(c)
                assert got == size, got
                return size / 1e6 / (time.perf_counter() - start)

            return asyncio.run(main())
        finally:
            c.close()

    async def recipe(c: paramiko.SSHClient) -> int:
        proc = await paramiko_recipe.exec_command(c, command)
        got = 0
        while chunk := await proc.read(1 << 16):
            got += len(chunk)
        proc.close()
        return got

    async def thread(c: paramiko.SSHClient) -> int:
        def blocking() -> int:
            _, stdout, _ = c.exec_command(command)
            got = 0
            while chunk := stdout.channel.recv(1 << 16):
                got += len(chunk)
            stdout.channel.close()
            return got

        return await asyncio.to_thread(blocking)

    return {
        "paramiko recipe": lambda: mb_per_s(recipe),
        "blocking paramiko in a thread": lambda: mb_per_s(thread),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--only", nargs="*", help="run the suites whose title has one of these")
    args = parser.parse_args()
    n = 500 if args.quick else 5000
    rounds = 2 if args.quick else 5
    suffix = "_quick" if args.quick else ""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for name in ("mqtt", "redis", "sshd"):
            (tmp / name).mkdir()
        pg = stack.enter_context(start_postgres())
        mqtt_port = stack.enter_context(start_mosquitto(tmp / "mqtt"))
        redis_port = stack.enter_context(start_redis(tmp / "redis"))
        sshd = stack.enter_context(start_sshd(tmp / "sshd"))
        zmq_port = 40000 + os.getpid() % 20000
        echo = subprocess.Popen([sys.executable, "-c", ZMQ_ECHO, str(zmq_port)])
        stack.callback(echo.wait)
        stack.callback(echo.kill)
        time.sleep(0.3)

        def mqtt(receive: Receive) -> Callable[[], float]:
            return lambda: mqtt_case(mqtt_port, n * 4, receive)

        suites: list[tuple[str, str, dict[str, Callable[[], float]], list[Any]]] = [
            (
                "psycopg2: SELECT 1 round trips",
                "queries/s",
                pg_cases(pg, n),
                [
                    ("psycopg2 recipe", "aiopg", 1.2),
                    ("psycopg2 recipe", "psycopg 3 AsyncConnection", 1.5),
                ],
            ),
            (
                "paho-mqtt: QoS 0 messages received",
                "messages/s",
                {"paho_mqtt recipe": mqtt(mqtt_recipe), "aiomqtt": mqtt(mqtt_aiomqtt)},
                [("paho_mqtt recipe", "aiomqtt", 1.5)],
            ),
            (
                "pyzmq: REQ/REP round trips",
                "round trips/s",
                zmq_cases(zmq_port, n),
                [("zmq recipe", "zmq.asyncio", 1.15)],
            ),
            (
                "redis: GET round trips",
                "round trips/s",
                redis_cases(redis_port, n),
                [("redis recipe", "redis.asyncio", 1.5)],
            ),
            (
                "paramiko: stdout stream",
                "MB/s",
                ssh_cases(sshd, (8 if args.quick else 64) * 1024 * 1024),
                [("paramiko recipe", "blocking paramiko in a thread", 0.9)],
            ),
        ]
        pin_malloc("warm")  # asyncio transports read into 256 KiB blocks: see _harness
        for title, unit, cases, targets in suites:
            if args.only and not any(word in title for word in args.only):
                continue
            load_before = os.getloadavg()[0]
            medians = interleave(cases, rounds, shuffle=True)
            save_as = f"servers_{title.split(':')[0]}{suffix}"
            report(title, unit, medians, targets, save_as=save_as)
            print_ceiling(medians, targets)
            note_load(save_as, load_before)
            if title.startswith("psycopg2"):
                # the client's own cost, less sensitive to where the scheduler
                # puts the server on a loaded machine
                save_as = f"servers_psycopg2_cpu{suffix}"
                report(
                    f"{title}, client CPU",
                    "queries per CPU second",
                    pg_cpu_medians(),
                    targets,
                    save_as,
                )
                print_ceiling(pg_cpu_medians(), targets)
                note_load(save_as, load_before)


if __name__ == "__main__":
    main()
