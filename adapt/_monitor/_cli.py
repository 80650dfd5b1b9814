"""``python -m adapt doctor``: run a program and report where its loop stalled.

::

    python -m adapt doctor -- python app.py --port 8000
    python -m adapt doctor --threshold 0.1 --json -- python -m mypkg.server
    python -m adapt doctor app.py            # same as: -- python app.py
    python -m adapt doctor -m mypkg.server   # same as: -- python -m mypkg.server

The program runs in a child process, unchanged: a ``sitecustomize`` module
put first on its ``PYTHONPATH`` installs :class:`~adapt._monitor._hooks.LoopHooks`,
which send each stall to the doctor over a pipe, as a JSON line, when it
ends.  When the program exits (or Ctrl-C stops it: the doctor itself
ignores the interrupt and waits), the doctor groups the stalls by call site
and prints the report.  The exit status is the program's own, or 3 with ``--fail`` when
the loop stalled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ._hooks import ENV
from ._report import Stall, StallReport, aggregate

__all__ = ["add_parser", "doctor", "run"]

BOOT = Path(__file__).with_name("_boot")

#: exit status of ``--fail`` when the loop stalled
STALLED = 3


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="run a program and report what blocks its event loop",
        description=(
            "Run a Python program (asyncio, uvloop or trio) unchanged, with a loop-stall "
            "monitor on every loop it starts; when it exits or on Ctrl-C, report where "
            "the loop was stuck and which adapt tool moves that call off the loop."
        ),
        usage=(
            "python -m adapt doctor [options] (-- python app.py ... | app.py ... | -m module ...)"
        ),
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.05,
        metavar="S",
        help="report stalls of S seconds or more (default: 0.05)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE instead of stderr"
    )
    parser.add_argument(
        "--fail",
        action="store_true",
        help=f"exit with status {STALLED} when the loop stalled (for CI)",
    )
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a module, as python -m MODULE"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the program and its arguments")
    parser.set_defaults(run=run)


def _command(args: argparse.Namespace) -> list[str]:
    command: list[str] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.module:
        return [sys.executable, "-m", args.module, *command]
    if not command:
        raise SystemExit(
            "adapt doctor: give the program to run, e.g. "
            "`python -m adapt doctor -- python app.py` or `python -m adapt doctor -m mymodule`"
        )
    if command[0].endswith(".py"):
        return [sys.executable, *command]
    return command


def run(args: argparse.Namespace) -> int:
    if not args.threshold > 0:
        raise SystemExit(f"adapt doctor: --threshold must be > 0 seconds, not {args.threshold}")
    stalled = False

    def show(report: StallReport) -> None:
        nonlocal stalled
        stalled = bool(report.sites)
        text = report.to_json() if args.json else report.format()
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            print(text, file=sys.stdout if args.json else sys.stderr, flush=True)

    status = doctor(_command(args), show, threshold=args.threshold)
    if args.fail and stalled:
        return STALLED
    return status


def doctor(
    command: list[str], on_report: Callable[[StallReport], None], threshold: float = 0.05
) -> int:
    """Run ``command`` with every loop it starts watched; hand its report to
    ``on_report`` as soon as the program exits, and return its exit status.

    The program writes its records to a pipe: each stall as it ends, and an
    ``exit`` record from an ``atexit`` hook, so the report is made while the
    interpreter is still tearing down, not after.
    """
    from ._core import Monitor

    Monitor(threshold)  # a bad threshold fails here, before the program starts
    read_end, write_end = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BOOT), env.get("PYTHONPATH")) if p)
    env[ENV] = json.dumps({"threshold": threshold, "fd": write_end})
    started = time.monotonic()
    try:
        proc = subprocess.Popen(command, env=env, pass_fds=(write_end,))
    except OSError as exc:
        os.close(read_end)
        raise SystemExit(f"adapt doctor: cannot run {command[0]!r}: {exc}") from None
    finally:
        os.close(write_end)
    # Ctrl-C reaches the program too (same process group): it stops, the
    # doctor reads what it sent and reports
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with open(read_end, encoding="utf-8") as pipe:
            records = _records(pipe, proc.pid)
        if not any("start" in r for r in records):
            print(
                "adapt doctor: the monitor did not start in the program "
                "(is it a Python program that can import adapt?)",
                file=sys.stderr,
            )
        on_report(_report(records, threshold, time.monotonic() - started))
        status = proc.wait()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return status if status >= 0 else 128 - status


def _records(pipe: TextIO, pid: int) -> list[dict[str, Any]]:
    """The program's records, up to its exit record (or the pipe's end, if it
    died without one)."""
    records: list[dict[str, Any]] = []
    for line in pipe:
        if not line.endswith("\n"):
            break  # a line cut short by a killed program
        record = json.loads(line)
        if record.get("exit") == pid:
            break
        records.append(record)
    return records


def _report(records: list[dict[str, Any]], threshold: float, wall: float) -> StallReport:
    stalls = [Stall.from_dict(r["stall"]) for r in records if "stall" in r]
    runs = [float(r["run"]["seconds"]) for r in records if "run" in r]
    return aggregate(stalls, threshold, sum(runs) if runs else wall)
