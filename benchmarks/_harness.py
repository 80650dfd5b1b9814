"""Interleaved side-by-side benchmarking: ratios, not absolute times.

The machine is shared and noisy, so every case of a benchmark runs in the
same process, interleaved round by round (A B C A B C ...), and each case
reports the median of its rounds.  Results are printed as ratios against a
named baseline and saved as JSON under ``benchmarks/results/`` for
``benchmarks/plot.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

#: a case returns a rate (higher is better): operations/s, MiB/s...
Case = Callable[[], float]


def interleave(
    cases: dict[str, Case], rounds: int, warmup: int = 1, shuffle: bool = False
) -> dict[str, float]:
    """Run every case ``warmup + rounds`` times, interleaved; median rates.

    With ``shuffle``, each round runs the cases in a new (seeded, so
    repeatable) random order, so that no case always follows the same one.
    """
    rates: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases.items())
    rng = random.Random(0)
    for r in range(warmup + rounds):
        if shuffle:
            rng.shuffle(order)
        for name, case in order:
            rate = case()
            if r >= warmup:
                rates[name].append(rate)
            print(f"  round {r} {name:<40} {rate:14.1f}", file=sys.stderr, flush=True)
    return {name: statistics.median(v) for name, v in rates.items()}


def report(
    title: str,
    unit: str,
    medians: dict[str, float],
    targets: list[tuple[str, str, float]],
    save_as: str,
) -> bool:
    """Print medians and the target ratios ``(case, baseline, minimum)``.

    Returns True when every target is met.  Saves the JSON for plots.
    """
    # a target whose cases were not run (``--only``) is not reported
    targets = [t for t in targets if t[0] in medians and t[1] in medians]
    print(f"\n== {title} ({unit}, median, higher is better)")
    for name, value in sorted(medians.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44} {value:14.1f}")
    ok = True
    lines = []
    for case, baseline, minimum in targets:
        ratio = medians[case] / medians[baseline]
        met = ratio >= minimum
        ok &= met
        line = f"  {case} / {baseline} = {ratio:.2f}x (target >= {minimum}x) {'OK' if met else 'MISSED'}"
        lines.append(line)
        print(line)
    RESULTS.mkdir(exist_ok=True)
    data = {
        "title": title,
        "unit": unit,
        "medians": medians,
        "targets": [
            {"case": c, "baseline": b, "minimum": m, "ratio": medians[c] / medians[b]}
            for c, b, m in targets
        ],
        "cpu_count": os.cpu_count(),
    }
    (RESULTS / f"{save_as}.json").write_text(json.dumps(data, indent=2) + "\n")
    return ok


# -- a peer in another process -------------------------------------------
#
# Ping-pong and bulk benchmarks talk to a plain blocking peer running in a
# separate process, so the peer never competes with the loop under test for
# the GIL.  One peer process serves every case of a run: for each case the
# parent makes a fresh socketpair and hands one end over a control socket
# (SCM_RIGHTS), together with what to do with it.


class Peer:
    """A blocking peer process; :meth:`open` gives it one end of a socketpair.

    Modes:

    * ``"echo"``: send back every byte received, until EOF.
    * ``"source N CHUNK"``: wait for one byte from us, then send ``N`` bytes
      in ``CHUNK``-byte ``sendall`` calls, then close.
    * ``"lines N LEN"``: wait for one byte from us, then send ``N`` lines of
      ``LEN`` bytes (newline included) in 64 KiB ``sendall`` calls, then close.

    CPU placement (``cpus``):

    * ``"same"``: this process and the peer share one CPU, both under
      ``SCHED_BATCH`` (no wake-up preemption).  A round trip is then
      deterministic -- we run until we block, the peer runs until it blocks --
      and costs the CPU time of both sides plus two context switches, so
      differences between cases are differences in CPU cost per wait.
    * ``"split"``: one CPU each.  Every round trip pays a cross-CPU wake-up,
      which on a small VM dwarfs the loop's own cost and rewards cases that
      are slow enough to find the reply already there.
    * ``"free"``: leave placement to the scheduler (bimodal on 2 CPUs).

    ::

        with Peer(cpus="same") as peer:
            sock = peer.open("echo")    # our end: a blocking socket
    """

    def __init__(self, cpus: str = "free") -> None:
        import socket
        import subprocess

        self._affinity = os.sched_getaffinity(0)
        self._policy = os.sched_getscheduler(0)
        self._ctl, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--peer", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        mine = sorted(self._affinity)
        if cpus == "same":
            for pid in (0, self._proc.pid):
                os.sched_setaffinity(pid, {mine[0]})
                os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
        elif cpus == "split" and len(mine) > 1:
            os.sched_setaffinity(0, {mine[0]})
            os.sched_setaffinity(self._proc.pid, {mine[1]})
        elif cpus not in ("free", "split"):
            raise ValueError(f"cpus must be 'same', 'split' or 'free', not {cpus!r}")

    def open(self, mode: str) -> Any:
        """A fresh socketpair end whose other end the peer now serves."""
        import socket

        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self._ctl, [mode.encode()], [theirs.fileno()])
        finally:
            theirs.close()
        if self._ctl.recv(1) != b"k":
            ours.close()
            raise RuntimeError("the peer process died")
        return ours

    def close(self) -> None:
        self._ctl.close()  # EOF on the control socket ends the peer
        self._proc.wait(timeout=10)
        os.sched_setscheduler(0, self._policy, os.sched_param(0))
        os.sched_setaffinity(0, self._affinity)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _peer_main(ctl_fd: int) -> None:
    import socket

    ctl = socket.socket(fileno=ctl_fd)
    while True:
        msg, fds, _, _ = socket.recv_fds(ctl, 256, 1)
        if not msg:
            return
        sock = socket.socket(fileno=fds[0])
        ctl.sendall(b"k")
        with sock:
            mode, *args = msg.decode().split()
            if mode == "echo":
                while data := sock.recv(65536):
                    sock.sendall(data)
            elif mode == "source":
                total, chunk = int(args[0]), int(args[1])
                block = b"\xa5" * chunk
                if sock.recv(1):
                    try:
                        while total > 0:
                            sock.sendall(block[:total])
                            total -= len(block)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the reader gave up early
            elif mode == "lines":
                count, size = int(args[0]), int(args[1])
                line = b"x" * (size - 1) + b"\n"
                per_block = max(1, 65536 // size)
                block = line * per_block
                if sock.recv(1):
                    try:
                        while count > 0:
                            sock.sendall(block if count >= per_block else line * count)
                            count -= per_block
                    except (BrokenPipeError, ConnectionResetError):
                        pass
            else:
                raise ValueError(f"unknown peer mode {mode!r}")


# -- glibc malloc's policy for large blocks ----------------------------------
#
# asyncio's selector transports (streams, Protocol) read with
# ``recv(256 KiB)`` and shrink the result.  Whether glibc serves that block
# from memory the heap already holds, or maps fresh pages for it (an mmap
# and page faults on every read), depends on the process's history: a fresh
# process maps (blocks over 128 KiB), and glibc raises that threshold the
# first time the program frees a large mapped block -- but trims and
# re-grows the heap top depending on what else lives there.  Left alone,
# the streams and Protocol cases switch between the two from round to round
# (about 2x apart); no other case allocates such blocks.  So the ping-pong
# benchmark pins the policy: "warm" (large blocks reused from the heap, the
# state a long-running program usually reaches) for every case, and "fresh"
# (glibc's initial policy, kept: every large block freshly mapped) for the
# extra asyncio streams/Protocol cases named so.

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def pin_malloc(state: str) -> None:
    """Pin glibc's large-block policy: ``"warm"`` or ``"fresh"`` (see above)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    if state == "warm":
        mmap_threshold, trim_threshold = 32 << 20, 64 << 20
    elif state == "fresh":
        mmap_threshold, trim_threshold = 128 << 10, 128 << 10  # glibc's initial values
    else:
        raise ValueError(f"state must be 'warm' or 'fresh', not {state!r}")
    if not (
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    ):
        raise OSError("mallopt failed")


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def save(name: str, data: dict[str, Any]) -> None:
    """Save a benchmark's results as ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    data.setdefault("cpu_count", os.cpu_count())
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def note_load(save_as: str, before: float) -> None:
    """Print and record the load average around a run.

    This process and its peer account for about 1; much more means other
    work shared the CPUs, and the run's figures deserve less trust.
    """
    after = os.getloadavg()[0]
    busy = " (other work was running: trust these figures less)" if max(before, after) > 2.5 else ""
    print(f"  load average: {before:.2f} before, {after:.2f} after{busy}")
    path = RESULTS / f"{save_as}.json"
    data = json.loads(path.read_text())
    data["loadavg"] = [before, after]
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__" and sys.argv[1:2] == ["--peer"]:
    _peer_main(int(sys.argv[2]))


# -- running one socket benchmark loop on each event loop ---------------------

#: a benchmark loop: an async function of (our socket, size) returning a rate
SocketLoop = Callable[[Any, int], Awaitable[float]]
#: the same loop, run to completion on a fresh event loop
SocketCase = Callable[[Any, int], float]


def on_asyncio(fn: SocketLoop) -> SocketCase:
    """Run ``fn`` on a fresh asyncio loop (imports stay lazy for the peer)."""
    import asyncio

    return lambda sock, size: asyncio.run(fn(sock, size))  # type: ignore[arg-type]


def on_uvloop(fn: SocketLoop) -> SocketCase:
    """Run ``fn`` on a fresh uvloop loop."""
    import uvloop

    return lambda sock, size: uvloop.run(fn(sock, size))  # type: ignore[arg-type]


def on_trio(fn: SocketLoop) -> SocketCase:
    """Run ``fn`` in a fresh trio run."""
    import trio

    return lambda sock, size: trio.run(fn, sock, size)


def interleave_on_peer(
    cases: dict[str, SocketCase],
    *,
    cpus: str,
    mode: str,
    size: int,
    rounds: int,
    only: str | None = None,
) -> dict[str, float]:
    """:func:`interleave` socket cases: each run gets a fresh socketpair whose
    other end one :class:`Peer` serves in ``mode``; ``only`` keeps the cases
    whose name contains it."""
    with Peer(cpus) as peer:

        def case(run: SocketCase) -> Case:
            def one() -> float:
                with peer.open(mode) as sock:
                    return run(sock, size)

            return one

        chosen = {name: case(run) for name, run in cases.items() if not only or only in name}
        return interleave(chosen, rounds, shuffle=True)


def add_peer_options(parser: argparse.ArgumentParser, default_cpus: str) -> None:
    """``--cpus`` (where the peer runs, see :class:`Peer`) and ``--only``."""
    parser.add_argument(
        "--cpus",
        choices=["same", "split", "free"],
        default=default_cpus,
        help=f"where the peer runs (see _harness.Peer; default: {default_cpus})",
    )
    parser.add_argument("--only", help="run only the cases whose name contains this")
