"""``python -m adapt doctor``: run a program and report where its loop stalled.

::

    python -m adapt doctor -- python app.py --port 8000
    python -m adapt doctor --threshold 0.1 --json -- python -m mypkg.server
    python -m adapt doctor app.py            # same as: -- python app.py
    python -m adapt doctor -m mypkg.server   # same as: -- python -m mypkg.server

The program runs in a child process, unchanged: a ``sitecustomize`` module
put first on its ``PYTHONPATH`` installs :class:`~adapt._monitor._hooks.LoopHooks`,
which stream each stall to a temporary file as a JSON line when it ends.
When the program exits (or Ctrl-C stops it: the doctor itself ignores the
interrupt and waits), the doctor groups the stalls by call site and prints
the report.  The exit status is the program's own, or 3 with ``--fail`` when
the loop stalled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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
        usage="python -m adapt doctor [options] (-- python app.py ... | app.py ... | -m module ...)",
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
    report, status = doctor(_command(args), threshold=args.threshold)
    text = report.to_json() if args.json else report.format()
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text, file=sys.stdout if args.json else sys.stderr, flush=True)
    if args.fail and report.sites:
        return STALLED
    return status


def doctor(command: list[str], threshold: float = 0.05) -> tuple[StallReport, int]:
    """Run ``command`` with every loop it starts watched; its report and exit status."""
    from ._core import Monitor

    Monitor(threshold)  # a bad threshold fails here, before the program starts
    with tempfile.TemporaryDirectory(prefix="adapt-doctor-") as tmp:
        out = os.path.join(tmp, "stalls.jsonl")
        Path(out).touch()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BOOT), env.get("PYTHONPATH")) if p)
        env[ENV] = json.dumps({"threshold": threshold, "out": out})
        started = time.monotonic()
        try:
            proc = subprocess.Popen(command, env=env)
        except OSError as exc:
            raise SystemExit(f"adapt doctor: cannot run {command[0]!r}: {exc}") from None
        # Ctrl-C reaches the program too (same process group): it stops, the
        # doctor waits for it and reports
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            status = proc.wait()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        wall = time.monotonic() - started
        return _read(out, threshold, wall), status if status >= 0 else 128 - status


def _read(path: str, threshold: float, wall: float) -> StallReport:
    stalls: list[Stall] = []
    monitored = 0.0
    runs = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line cut short by a killed program
            record = json.loads(line)
            if "stall" in record:
                stalls.append(Stall.from_dict(record["stall"]))
            elif "run" in record:
                monitored += float(record["run"]["seconds"])
                runs += 1
    return aggregate(stalls, threshold, monitored if runs else wall)
