"""The stall monitor's overhead: the same work with ``adapt.monitor()`` on and off.

Two workloads, each on asyncio, uvloop and trio, with the monitor off and on,
all interleaved in one process (each case on a fresh loop):

* **ping-pong**: 64-byte round trips through ``Async(sock)`` to an echo peer
  in another process (``bench_pingpong.adapt_loop``), round trips/s;
* **offload**: sequential ``run_sync`` calls of a trivial function, calls/s.

A loop that never stalls pays for the monitor's heartbeat only: the
watchdog thread wakes every ``threshold / 2`` and asks the loop to run a
tiny callback.  The targets are on/off >= 0.98 everywhere.

Each case is reported twice: per second of wall-clock time (the target),
and per second of this process's CPU time, the watchdog thread's included.
On a shared, loaded machine the wall-clock ratios move by several percent
from run to run; the CPU-time ratios show the monitor's own cost.

    python benchmarks/bench_monitor.py            # full run (~2 minutes)
    python benchmarks/bench_monitor.py --quick    # smoke run
    python benchmarks/bench_monitor.py --parts    # where a heartbeat's CPU goes
    python benchmarks/bench_monitor.py --only offload --pin 1   # offload on one CPU

``--parts`` runs an idle loop (one ``sleep(1)``) and reports the CPU time
each of these adds per heartbeat (every 25 ms), in the loop thread and in
all: the monitor; a thread that only wakes every 25 ms (it takes the GIL
to return from its sleep); and that thread also asking the loop for a
callback (``call_soon_threadsafe`` / ``run_sync_soon``) -- the two parts
of a watchdog-driven heartbeat, which the monitor does without.  (On an
idle loop the figures are steady from run to run; on a busy one, the
wake-up also costs the loop thread a GIL hand-over, too small a share of
a busy loop's CPU time to measure on a loaded machine.)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterable

import trio
import uvloop
from _harness import (
    Case,
    add_peer_options,
    interleave,
    interleave_on_peer,
    note_load,
    on_asyncio,
    on_trio,
    on_uvloop,
    pin_malloc,
    report,
)
from bench_pingpong import adapt_loop

import adapt

LOOPS = ("asyncio", "uvloop", "trio")


#: rates per CPU second / per wall-clock second of each case's runs, by case name
CPU_RATES: dict[str, list[float]] = {}
WALL_RATES: dict[str, list[float]] = {}


def _note(name: str, n: int, wall: float, cpu: float) -> float:
    CPU_RATES.setdefault(name, []).append(n / cpu)
    WALL_RATES.setdefault(name, []).append(n / wall)
    return n / wall


def _timed(
    name: str, fn: Callable[[socket.socket, int], Awaitable[float]], monitored: bool
) -> Callable[[socket.socket, int], Awaitable[float]]:
    async def run(sock: socket.socket, n: int) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        if monitored:
            async with adapt.monitor():
                await fn(sock, n)
        else:
            await fn(sock, n)
        return _note(name, n, time.perf_counter() - t0, time.process_time() - c0)

    return run


def work(x: int) -> int:
    return x


async def offload(n: int) -> None:
    call = functools.partial(adapt.run_sync, work, 1)
    for _ in range(n):
        await call()


def _offload(name: str, monitored: bool) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        await adapt.run_sync(work, 1)  # warm the pool
        t0, c0 = time.perf_counter(), time.process_time()
        if monitored:
            async with adapt.monitor():
                await offload(n)
        else:
            await offload(n)
        return _note(name, n, time.perf_counter() - t0, time.process_time() - c0)

    return run


def _cpu_medians(names: Iterable[str], rounds: int) -> dict[str, float]:
    """Medians of the measured rounds (the warm-up round is the first)."""
    return {name: statistics.median(CPU_RATES[name][-rounds:]) for name in names}


def _paired(kind: str, rounds: int) -> None:
    """Print the median of the per-round on/off ratios: both cases of a loop
    run in the same round, so a load change between rounds cancels out."""
    print(f"  paired per round (median of {rounds} on/off ratios, wall-clock):")
    for loop in LOOPS:
        on, off = WALL_RATES.get(f"{kind} on ({loop})"), WALL_RATES.get(f"{kind} off ({loop})")
        if on and off:
            ratios = [a / b for a, b in zip(on[-rounds:], off[-rounds:], strict=True)]
            print(f"    {loop:<8} {statistics.median(ratios):.3f}x  (min {min(ratios):.3f}x)")


def run_on(loop: str, main: Callable[[int], Awaitable[float]], n: int) -> float:
    if loop == "trio":
        return trio.run(main, n)
    if loop == "uvloop":
        return uvloop.run(main(n))  # type: ignore[arg-type]
    return asyncio.run(main(n))  # type: ignore[arg-type]


PERIOD = 0.025  # the default threshold's heartbeat


async def _idle(loop: str, seconds: float) -> None:
    await (trio.sleep(seconds) if loop == "trio" else asyncio.sleep(seconds))


async def _part(loop: str, part: str, seconds: float) -> tuple[float, float, float]:
    """Loop-thread CPU, process CPU and wall time of ``seconds`` idle."""
    stop = threading.Event()
    post: Callable[[Callable[[], None]], object] = (
        trio.lowlevel.current_trio_token().run_sync_soon
        if loop == "trio"
        else asyncio.get_running_loop().call_soon_threadsafe
    )

    def waker() -> None:  # the old watchdog's schedule, without its bookkeeping
        while not stop.wait(PERIOD):
            if part == "wake+ask":
                post(lambda: None)

    thread = threading.Thread(target=waker) if part.startswith("wake") else None
    t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
    if thread is not None:
        thread.start()
    if part == "monitor":
        async with adapt.Monitor(2 * PERIOD):
            await _idle(loop, seconds)
    else:
        await _idle(loop, seconds)
    stop.set()
    if thread is not None:
        thread.join()
    return time.thread_time() - c0, time.process_time() - p0, time.perf_counter() - t0


def _run_part(loop: str, part: str, seconds: float) -> tuple[float, float, float]:
    if loop == "trio":
        return trio.run(_part, loop, part, seconds)
    runner = uvloop.run if loop == "uvloop" else asyncio.run
    return runner(_part(loop, part, seconds))


def parts(rounds: int) -> None:
    """CPU per heartbeat of each part, against no monitor, in paired rounds."""
    names = ("off", "monitor", "wake", "wake+ask")
    print(f"== CPU per heartbeat ({PERIOD * 1000:g} ms) on an idle loop, median of {rounds}")
    for loop in LOOPS:
        runs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        for _ in range(rounds):
            for name in names:
                runs[name].append(_run_part(loop, name, 1.0))
        for name in names[1:]:
            # the CPU time a second of idling took more, per heartbeat
            pairs = list(zip(runs[name], runs["off"], strict=True))
            loop_us = statistics.median(
                (on[0] - off[0]) / on[2] * PERIOD * 1e6 for on, off in pairs
            )
            all_us = statistics.median((on[1] - off[1]) / on[2] * PERIOD * 1e6 for on, off in pairs)
            print(
                f"  {loop:<8} {name:<9} loop thread {loop_us:6.0f} us   all threads {all_us:6.0f} us"
            )


def _pin_threads(cpu: int) -> None:
    """Keep every thread of this process, and those it starts, on one CPU.

    Sequential ``run_sync`` calls hand the GIL back and forth between the
    loop thread and a worker; which CPUs the two land on, the same one or
    two, moves the calls/s of a round by up to 1.8x on this 2-core machine
    (the monitor off, run to run), far more than the 2% the target asks to
    see.  On one CPU the hand-over costs the same in every round.
    """
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {cpu})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--parts", action="store_true", help="CPU per heartbeat, by part")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 9)")
    parser.add_argument(
        "--pin",
        type=int,
        metavar="CPU",
        help="offload: run every thread of this process on this one CPU (see _pin_threads)",
    )
    add_peer_options(parser, "same")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 9)
    if args.parts:
        parts(rounds)
        return
    trips = 1000 if args.quick else 20_000
    calls = 1000 if args.quick else 10_000
    suffix = "_quick" if args.quick else ""

    load = os.getloadavg()[0]
    pin_malloc("warm")
    runners = {"asyncio": on_asyncio, "uvloop": on_uvloop, "trio": on_trio}
    pingpong = {}
    for loop in LOOPS:
        for state in ("off", "on"):
            name = f"ping-pong {state} ({loop})"
            pingpong[name] = runners[loop](_timed(name, adapt_loop, state == "on"))
    medians = interleave_on_peer(
        pingpong, cpus=args.cpus, mode="echo", size=trips, rounds=rounds, only=args.only
    )
    targets = [(f"ping-pong on ({loop})", f"ping-pong off ({loop})", 0.98) for loop in LOOPS]
    title = f"monitor overhead: ping-pong, {trips} round trips x {rounds} rounds"
    report(title, "round trips/s", medians, targets, save_as=f"monitor_pingpong{suffix}")
    note_load(f"monitor_pingpong{suffix}", load)
    _paired("ping-pong", rounds)
    report(
        title,
        "round trips per CPU second",
        _cpu_medians(medians, rounds),
        targets,
        save_as=f"monitor_pingpong_cpu{suffix}",
    )

    if args.pin is not None:
        _pin_threads(args.pin)
    load = os.getloadavg()[0]
    cases: dict[str, Case] = {}
    for loop in LOOPS:
        for state in ("off", "on"):
            name = f"offload {state} ({loop})"
            cases[name] = functools.partial(run_on, loop, _offload(name, state == "on"), calls)
    if args.only:
        cases = {name: case for name, case in cases.items() if args.only in name}
    medians = interleave(cases, rounds, shuffle=True)
    targets = [(f"offload on ({loop})", f"offload off ({loop})", 0.98) for loop in LOOPS]
    title = f"monitor overhead: run_sync, {calls} sequential calls x {rounds} rounds"
    report(title, "calls/s", medians, targets, save_as=f"monitor_offload{suffix}")
    note_load(f"monitor_offload{suffix}", load)
    _paired("offload", rounds)
    report(
        title,
        "calls per CPU second",
        _cpu_medians(medians, rounds),
        targets,
        save_as=f"monitor_offload_cpu{suffix}",
    )


if __name__ == "__main__":
    main()
