"""Thread offload: adapt's run_sync / reader() / iterate() against their peers.

Three interleaved benchmarks in one process (each case on a fresh loop):

* **calls**: a trivial function run in a worker thread, sequentially and by
  100 concurrent callers; calls/s, plus p50/p99 latency of single calls.
  Peers: ``asyncio.to_thread``, ``loop.run_in_executor``,
  ``anyio.to_thread.run_sync``, ``trio.to_thread.run_sync``,
  ``asgiref.sync_to_async``, ``asyncer.asyncify``.
* **file read**: a cached file read in 64 KiB chunks, MiB/s.  Peers:
  aiofiles, ``anyio.open_file``, ``trio.open_file``, one ``to_thread`` per
  chunk, and plain blocking ``f.read()`` with no event loop.
* **iterate**: items of a sync iterator; ``iterate()`` over 1,000,000 items
  against one ``to_thread(next, ...)`` per item (over fewer items, since it
  is slow: the rates are comparable).

    python benchmarks/bench_threads.py            # full run (~3 minutes)
    python benchmarks/bench_threads.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiofiles
import anyio
import anyio.to_thread
import asgiref.sync
import asyncer
import trio
import uvloop
from _harness import interleave, note_load, report, save

from adapt import iterate, reader, run_sync

CONCURRENCY = 100
CHUNK = 64 * 1024
MIB = 1024 * 1024


def work(x: int) -> int:
    return x


# -- how each peer offloads one call ------------------------------------------

Offload = Callable[[], Awaitable[object]]


def _adapt() -> Offload:
    return functools.partial(run_sync, work, 1)


def _to_thread() -> Offload:
    return functools.partial(asyncio.to_thread, work, 1)


def _executor() -> Offload:
    loop = asyncio.get_running_loop()
    return functools.partial(loop.run_in_executor, None, work, 1)


def _anyio() -> Offload:
    return functools.partial(anyio.to_thread.run_sync, work, 1)


def _trio() -> Offload:
    return functools.partial(trio.to_thread.run_sync, work, 1)


def _asgiref() -> Offload:
    return functools.partial(asgiref.sync.sync_to_async(work, thread_sensitive=False), 1)


def _asyncer() -> Offload:
    return functools.partial(asyncer.asyncify(work), 1)


PEERS: dict[str, tuple[str, Callable[[], Offload]]] = {
    "adapt.run_sync (asyncio)": ("asyncio", _adapt),
    "adapt.run_sync (uvloop)": ("uvloop", _adapt),
    "adapt.run_sync (trio)": ("trio", _adapt),
    "asyncio.to_thread": ("asyncio", _to_thread),
    "loop.run_in_executor": ("asyncio", _executor),
    "anyio.to_thread.run_sync": ("asyncio", _anyio),
    "trio.to_thread.run_sync": ("trio", _trio),
    "asgiref.sync_to_async": ("asyncio", _asgiref),
    "asyncer.asyncify": ("asyncio", _asyncer),
}


def run_on(loop: str, main: Callable[[], Awaitable[float]]) -> float:
    if loop == "trio":
        return trio.run(main)
    if loop == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


async def _sequential(make: Callable[[], Offload], n: int, latencies: list[float] | None) -> float:
    call = make()
    await call()  # warm the pool
    clock = time.perf_counter
    t0 = clock()
    if latencies is None:
        for _ in range(n):
            await call()
    else:
        for _ in range(n):
            t = clock()
            await call()
            latencies.append(clock() - t)
    return n / (clock() - t0)


async def _concurrent(make: Callable[[], Offload], n: int) -> float:
    call = make()
    per_task = n // CONCURRENCY

    async def caller() -> None:
        for _ in range(per_task):
            await call()

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(caller)
    return per_task * CONCURRENCY / (time.perf_counter() - t0)


# -- file reads ------------------------------------------------------------------


def _make_file(size: int) -> Path:
    fd, name = tempfile.mkstemp(prefix="adapt-bench-", suffix=".bin")
    block = os.urandom(MIB)
    with os.fdopen(fd, "wb") as f:
        for _ in range(size // MIB):
            f.write(block)
    path = Path(name)
    with open(path, "rb") as f:  # into the page cache
        while f.read(16 * MIB):
            pass
    return path


def _read_cases(path: Path) -> dict[str, Callable[[], float]]:
    size = path.stat().st_size / MIB

    def timed(loop: str, body: Callable[[], Awaitable[None]]) -> Callable[[], float]:
        async def main() -> float:
            t0 = time.perf_counter()
            await body()
            return size / (time.perf_counter() - t0)

        return lambda: run_on(loop, main)

    async def adapt_reader() -> None:
        async with reader(open(path, "rb")) as r:
            while await r.read(CHUNK):
                pass

    async def aiofiles_read() -> None:
        async with aiofiles.open(path, "rb") as f:
            while await f.read(CHUNK):
                pass

    async def anyio_read() -> None:
        async with await anyio.open_file(path, "rb") as f:
            while await f.read(CHUNK):
                pass

    async def trio_read() -> None:
        async with await trio.open_file(path, "rb") as f:
            while await f.read(CHUNK):
                pass

    async def to_thread_read() -> None:
        with open(path, "rb") as f:
            while await asyncio.to_thread(f.read, CHUNK):
                pass

    def sync_read() -> float:
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            while f.read(CHUNK):
                pass
        return size / (time.perf_counter() - t0)

    return {
        "adapt.reader (asyncio)": timed("asyncio", adapt_reader),
        "adapt.reader (uvloop)": timed("uvloop", adapt_reader),
        "adapt.reader (trio)": timed("trio", adapt_reader),
        "aiofiles": timed("asyncio", aiofiles_read),
        "anyio.open_file": timed("asyncio", anyio_read),
        "trio.open_file": timed("trio", trio_read),
        "asyncio.to_thread per chunk": timed("asyncio", to_thread_read),
        "plain sync f.read (no loop)": sync_read,
    }


# -- iterate ---------------------------------------------------------------------


def _items(n: int) -> Iterator[int]:
    return iter(range(n))


def _iterate_cases(n: int, n_slow: int) -> dict[str, Callable[[], float]]:
    async def adapt_iterate() -> float:
        t0 = time.perf_counter()
        count = 0
        async for _ in iterate(_items(n)):
            count += 1
        assert count == n
        return n / (time.perf_counter() - t0)

    async def per_item() -> float:
        it = _items(n_slow)
        done = object()
        t0 = time.perf_counter()
        count = 0
        while await asyncio.to_thread(next, it, done) is not done:
            count += 1
        assert count == n_slow
        return n_slow / (time.perf_counter() - t0)

    return {
        "adapt.iterate (asyncio)": lambda: asyncio.run(adapt_iterate()),
        "adapt.iterate (trio)": lambda: trio.run(adapt_iterate),
        "asyncio.to_thread(next) per item": lambda: asyncio.run(per_item()),
    }


def _percentiles(n: int) -> dict[str, dict[str, float]]:
    """p50/p99 latency of single sequential calls, per peer, in microseconds."""
    out = {}
    for name, (loop, make) in PEERS.items():
        lat: list[float] = []
        run_on(loop, lambda make=make, lat=lat: _sequential(make, n, lat))  # type: ignore[misc]
        lat.sort()
        out[name] = {
            "p50_us": statistics.median(lat) * 1e6,
            "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 5)")
    parser.add_argument("--file-mib", type=int, help="size of the file read (default 512)")
    parser.add_argument("--only", choices=["calls", "read", "iterate"], help="one benchmark")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    n_seq = 2_000 if args.quick else 10_000
    n_conc = 5_000 if args.quick else 30_000
    file_mib = args.file_mib or (64 if args.quick else 512)
    n_items = 100_000 if args.quick else 1_000_000
    n_slow = 5_000 if args.quick else 20_000
    suffix = "_quick" if args.quick else ""
    load = os.getloadavg()[0]

    if args.only in (None, "calls"):
        seq = {f"{k} seq": (lambda lp=lp, mk=mk: run_on(lp, lambda: _sequential(mk, n_seq, None)))
               for k, (lp, mk) in PEERS.items()}  # fmt: skip
        conc = {f"{k} x{CONCURRENCY}": (lambda lp=lp, mk=mk: run_on(lp, lambda: _concurrent(mk, n_conc)))
                for k, (lp, mk) in PEERS.items()}  # fmt: skip
        medians = interleave({**seq, **conc}, rounds, shuffle=True)
        report(
            f"trivial calls in threads: {n_seq} sequential, {n_conc} by {CONCURRENCY} callers",
            "calls/s",
            medians,
            [
                ("adapt.run_sync (asyncio) seq", "asyncio.to_thread seq", 1.2),
                (
                    f"adapt.run_sync (asyncio) x{CONCURRENCY}",
                    f"asyncio.to_thread x{CONCURRENCY}",
                    3.0,
                ),
                (
                    f"adapt.run_sync (asyncio) x{CONCURRENCY}",
                    f"anyio.to_thread.run_sync x{CONCURRENCY}",
                    5.0,
                ),
                ("adapt.run_sync (trio) seq", "trio.to_thread.run_sync seq", 1.0),
            ],
            save_as=f"threads_calls{suffix}",
        )
        note_load(f"threads_calls{suffix}", load)
        lat = _percentiles(n_seq)
        print("\n== single-call latency (sequential calls, microseconds)")
        for name, p in sorted(lat.items(), key=lambda kv: kv[1]["p50_us"]):
            print(f"  {name:<44} p50 {p['p50_us']:8.1f}   p99 {p['p99_us']:8.1f}")
        save(f"threads_latency{suffix}", {"latency_us": lat, "calls": n_seq})

    if args.only in (None, "read"):
        path = _make_file(file_mib * MIB)
        try:
            medians = interleave(_read_cases(path), rounds, shuffle=True)
        finally:
            path.unlink()
        report(
            f"read a cached {file_mib} MiB file in {CHUNK // 1024} KiB chunks",
            "MiB/s",
            medians,
            [
                ("adapt.reader (asyncio)", "aiofiles", 5.0),
                ("adapt.reader (asyncio)", "plain sync f.read (no loop)", 0.35),
            ],
            save_as=f"threads_read{suffix}",
        )
        note_load(f"threads_read{suffix}", load)

    if args.only in (None, "iterate"):
        medians = interleave(_iterate_cases(n_items, n_slow), rounds, shuffle=True)
        report(
            f"iterate {n_items} items (per-item to_thread over {n_slow})",
            "items/s",
            medians,
            [("adapt.iterate (asyncio)", "asyncio.to_thread(next) per item", 10.0)],
            save_as=f"threads_iterate{suffix}",
        )
        note_load(f"threads_iterate{suffix}", load)


if __name__ == "__main__":
    main()
