"""The command line and the main loop.

The inotify part is adapt (:mod:`watcher.source`); the structure around it
-- a task group, timeouts, signals, child processes -- is anyio, so one
program runs on asyncio and on trio (``--loop``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from functools import partial

import anyio
import anyio.abc
from inotify_simple import INotify

from .command import ENV_VAR, CommandRunner
from .demo import make_changes
from .output import Printer
from .source import EventSource
from .tree import Tree
from .window import Change, Window

USAGE_EXAMPLES = f"""\
examples:
  %(prog)s                         a demo: watch a temp dir while it changes
  %(prog)s ~/src/project           print changes under a directory until Ctrl-C
  %(prog)s --json . | jq .path     one JSON object per change
  %(prog)s . --exec 'make test'    run a command after changes (paths in ${ENV_VAR})
"""


async def watch(
    tree: Tree, source: EventSource, debounce: float, report: Callable[[list[Change]], None]
) -> None:
    """Report changes, one batch per debounce window, until the root is gone."""
    while True:
        window = Window(tree)
        window.feed(await source.next_batch())  # the first event opens the window
        with anyio.move_on_after(debounce):  # a cancelled read has consumed nothing
            while not window.root_gone:
                window.feed(await source.next_batch())
        changes = window.close()
        if changes:
            report(changes)
        if window.root_gone:
            return


async def stop_on_signals(
    scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Ctrl-C (SIGINT) and SIGTERM end the program cleanly."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            print(f"stopping ({signal.Signals(signum).name})", file=sys.stderr, flush=True)
            scope.cancel()
            return


async def run_demo(root: str, outside: str, pause: float, scope: anyio.CancelScope) -> None:
    await make_changes(root, outside, pause)
    print(
        "demo: done. Watch a directory of yours: python examples/inotify/watch.py DIR",
        file=sys.stderr,
        flush=True,
    )
    scope.cancel()


async def main_async(args: argparse.Namespace, root: str, outside: str | None) -> int:
    inotify = INotify()
    tree = Tree(root, inotify)
    source = EventSource(inotify)  # from here on, source owns the inotify fd
    status = 0
    try:
        tree.add("")
        printer = Printer(sys.stdout, json_lines=args.json)
        runner = CommandRunner(args.exec, tree.root) if args.exec else None

        def report(changes: list[Change]) -> None:
            printer(changes)
            if runner is not None:
                runner.submit(changes)

        async with anyio.create_task_group() as tg:
            await tg.start(stop_on_signals, tg.cancel_scope)
            count = f"{len(tree)} director{'y' if len(tree) == 1 else 'ies'}"
            print(f"watching {tree.root} ({count}, {args.loop})", file=sys.stderr, flush=True)
            if runner is not None:
                tg.start_soon(runner.run)
            if outside is not None:
                tg.start_soon(run_demo, root, outside, args.debounce * 2 + 0.2, tg.cancel_scope)
            await watch(tree, source, args.debounce, report)
            print(f"{tree.root} is gone; stopping", file=sys.stderr, flush=True)
            status = 1
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()
    return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="watch.py",
        description="Print changes under a directory as they happen (inotify + adapt).",
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", help="directory to watch (default: a demo)")
    parser.add_argument(
        "--demo", action="store_true", help="run the demo (the default when no path is given)"
    )
    parser.add_argument("--loop", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--debounce",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="collect changes this long before reporting them (default 0.2)",
    )
    parser.add_argument(
        "--exec",
        metavar="CMD",
        help=f"run CMD with a shell after changes, one at a time; ${ENV_VAR} lists the paths",
    )
    args = parser.parse_args(argv)
    if args.demo and args.path is not None:
        parser.error("give either a directory to watch or --demo, not both")
    if args.path is not None and not os.path.isdir(args.path):
        parser.error(f"{args.path!r} is not a directory: give a directory to watch")
    if args.debounce <= 0:
        parser.error("--debounce must be a positive number of seconds, like 0.2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.path is not None:
        return anyio.run(partial(main_async, args, args.path, None), backend=args.loop)
    with (
        tempfile.TemporaryDirectory(prefix="watch-demo-") as root,
        tempfile.TemporaryDirectory() as outside,
    ):
        return anyio.run(partial(main_async, args, root, outside), backend=args.loop)
