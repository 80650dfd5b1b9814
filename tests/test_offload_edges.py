"""The worker pool at its edges: fork, a thread that cannot start, bounded
read-ahead after a cancelled read, worker names.

fork and thread-start failure run in a child interpreter (``python -c``) on
each loop: they change process-wide state (an address-space limit, a forked
copy of the pool) that must not leak into the test process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from adapt import iterate, reader, run_sync

LOOPS = ("asyncio", "uvloop", "trio")

_RUNNER = """
import sys, anyio
BACKEND = sys.argv[1]

def run(fn):
    if BACKEND == "trio":
        return anyio.run(fn, backend="trio")
    return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": BACKEND == "uvloop"})
"""


def _run_child(script: str, loop: str, timeout: float = 30) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER + script, loop],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- fork ---------------------------------------------------------------------------

_FORK = """
import json, os, signal, traceback
import adapt

limiter = adapt.CapacityLimiter(1)

async def call():
    return await adapt.run_sync(os.getpid, limiter=limiter)

assert run(call) == os.getpid()  # its worker now idles for 0.25 s: fork within that
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a hang kills the child, and the parent sees it

    async def child():
        with anyio.fail_after(5):
            assert await adapt.run_sync(os.getpid, limiter=limiter) == os.getpid()
            assert await adapt.run_sync(os.getpid) == os.getpid()
            assert [x async for x in adapt.iterate(range(3))] == [0, 1, 2]

    try:
        run(child)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert run(call) == os.getpid()  # the parent's pool is untouched
print(json.dumps({"child": os.waitstatus_to_exitcode(status)}))
"""


@pytest.mark.parametrize("loop", LOOPS)
def test_forked_child_gets_a_working_pool(loop: str) -> None:
    assert _run_child(_FORK, loop) == {"child": 0}


# -- a worker thread that cannot start ----------------------------------------------

_NO_THREADS = """
import io, json, resource, threading
import adapt

def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

async def main():
    out = {}
    limiter = adapt.CapacityLimiter(2)
    facade = adapt.AsyncObject(io.BytesIO(), pin=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # a real limit: 64 MiB of address space left, and a thread stack needs 256 MiB
    threading.stack_size(256 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (64 << 20), hard))
    try:
        for what, make in (
            ("run_sync", lambda: adapt.run_sync(sum, [1, 2], limiter=limiter)),
            ("iterate", lambda: anext(aiter(adapt.iterate(range(3))))),
            ("pinned", lambda: facade.getvalue()),
        ):
            try:
                with anyio.fail_after(5):
                    await make()
                out[what] = "no error"
            except RuntimeError as exc:
                out[what] = str(exc)
        out["borrowed"] = limiter.borrowed_tokens
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        threading.stack_size(0)
    with anyio.fail_after(5):
        out["after"] = await adapt.run_sync(sum, [1, 2], limiter=limiter)
        out["after_iterate"] = [x async for x in adapt.iterate(range(3))]
        out["after_pinned"] = (await facade.getvalue()).decode()
    out["borrowed_after"] = limiter.borrowed_tokens
    print(json.dumps(out))

run(main)
"""


@pytest.mark.parametrize("loop", LOOPS)
def test_thread_start_failure_fails_the_call_and_the_pool_recovers(loop: str) -> None:
    out = _run_child(_NO_THREADS, loop)
    for what in ("run_sync", "iterate", "pinned"):
        message = str(out[what])
        assert "could not start" in message, (what, message)
        assert "did not run" in message, (what, message)
    assert out["borrowed"] == 0  # the failed call's token was returned
    assert out["after"] == 3
    assert out["after_iterate"] == [0, 1, 2]
    assert out["after_pinned"] == ""
    assert out["borrowed_after"] == 0


# -- bounded read-ahead -------------------------------------------------------------


async def test_cancelled_read_does_not_keep_the_pump_reading(backend: str) -> None:
    rfd, wfd = os.pipe()
    written = [0]
    total = 4 << 20

    def feed() -> None:  # a slow source: 64 KiB every 5 ms
        block = b"x" * 65536
        try:
            while written[0] < total:
                written[0] += os.write(wfd, block)
                time.sleep(0.005)
        except OSError:
            pass  # the reader closed its end
        finally:
            os.close(wfd)

    feeder = threading.Thread(target=feed)
    feeder.start()
    buffer_size = 64 * 1024
    try:
        async with reader(open(rfd, "rb", buffering=0), buffer_size=buffer_size) as r:
            with anyio.move_on_after(0.1):
                await r.read()  # to end of file: cancelled long before it
            at_cancel = written[0]
            await anyio.sleep(0.5)  # a pump still reading for nobody would drain the pipe
            # at most: the read in flight, a full pipe, and the write in flight
            assert written[0] - at_cancel <= 3 * 65536, (at_cancel, written[0])
            assert written[0] < total
    finally:
        feeder.join(5)


async def test_iterate_reads_at_most_buffer_size_ahead(backend: str) -> None:
    produced = [0]

    def count() -> Iterator[int]:
        while True:
            produced[0] += 1
            yield produced[0]

    consumed = 0
    most_ahead = 0
    async with iterate(count(), buffer_size=10) as items:
        for _ in range(25):
            await anext(items)
            consumed += 1
            await anyio.sleep(0.01)  # the pump runs ahead meanwhile
            most_ahead = max(most_ahead, produced[0] - consumed)
    assert most_ahead <= 10


# -- names ------------------------------------------------------------------------


async def test_worker_threads_have_distinct_names(backend: str) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def name() -> str:
        barrier.wait()  # three calls at once: three threads
        return threading.current_thread().name

    names: list[str] = []

    async def one() -> None:
        names.append(await run_sync(name))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert len(set(names)) == 3
    assert all(re.fullmatch(r"adapt-worker-\d+", n) for n in names), names


# -- Portal racing the end of the loop ---------------------------------------------

_PORTAL_RACE = """
import asyncio, concurrent.futures, gc, json, threading, time, weakref
import adapt

async def one():
    return 1

started = [0]
delivered = []

def starts_until_the_end(portal):
    for _ in range(200):  # callbacks: each start must deliver once, even at the very end
        n = started[0]
        try:
            portal.start(
                one,
                then=lambda v, n=n: delivered.append(n),
                on_error=lambda e, n=n: delivered.append(n),
            )
        except RuntimeError:
            return
        started[0] += 1
        time.sleep(0.0001)

def calls_until_the_end(portal, out, ready, mode):
    ready.wait()
    if mode == 2:
        return starts_until_the_end(portal)
    while True:  # keep calling while the loop shuts down (or call once, at its end)
        try:
            out.append(portal.call(one))
        except concurrent.futures.CancelledError:
            out.append("cancelled")
            return
        except RuntimeError:  # the loop had ended before the call
            out.append("ended")
            return
        if mode:
            return

blocked = 0
outcomes = set()
loops = []
for i in range(450):
    out, ready, box = [], threading.Event(), []
    async def main():
        box.append(adapt.Portal())
        if BACKEND != "trio":
            loops.append(weakref.ref(asyncio.get_running_loop()))
        ready.set()
        await anyio.sleep(0.001 if i % 3 == 2 else 0)

    t = threading.Thread(
        target=lambda: (ready.wait(), calls_until_the_end(box[0], out, ready, i % 3))
    )
    t.start()
    run(main)
    t.join(2)  # the loop has ended: a thread still in call() is blocked for good
    if t.is_alive():
        blocked += 1
    outcomes.update(map(str, out))
box.clear()
gc.collect()
print(json.dumps({
    "blocked": blocked,
    "outcomes": sorted(outcomes),
    "started": started[0],
    "delivered_once": sorted(delivered) == list(range(started[0])),
    "loops_alive": sum(ref() is not None for ref in loops),
}))
import os
os._exit(0)  # do not wait for a blocked thread
"""


@pytest.mark.parametrize("loop", LOOPS)
def test_portal_racing_the_end_of_the_loop(loop: str) -> None:
    out = _run_child(_PORTAL_RACE, loop, timeout=120)
    assert out["blocked"] == 0  # no thread left in Portal.call
    assert set(out["outcomes"]) <= {"1", "cancelled", "ended"}
    assert out["started"]
    assert out["delivered_once"]  # every start() called back exactly once
    assert out["loops_alive"] == 0  # no closed loop kept alive
