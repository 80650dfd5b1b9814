"""An async directory watcher: inotify_simple, made awaitable by adapt.

    python examples/inotify/watch.py DIR          # print changes in DIR until Ctrl-C
    python examples/inotify/watch.py --demo       # watch a temp dir while files come and go
    python examples/inotify/watch.py --demo --trio

inotify_simple is a synchronous library: ``INotify.read(timeout=0)`` returns
``[]`` when no event is queued.  That empty list is its "would block"
signal, so the op below raises :class:`adapt.WouldBlock` and adapt waits
until the inotify fd is readable: no thread, no polling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from inotify_simple import INotify, flags

from adapt import Async, WouldBlock

WATCHED = flags.CREATE | flags.MODIFY | flags.DELETE | flags.MOVED_FROM | flags.MOVED_TO


def read_events(inotify: INotify) -> list[tuple[str, str]]:
    """The op: one non-blocking read of the queued events."""
    events = inotify.read(timeout=0)
    if not events:
        raise WouldBlock  # nothing queued: wait until the fd is readable
    return [(e.name, "|".join(f.name for f in flags.from_mask(e.mask))) for e in events]


async def changes(inotify: INotify) -> AsyncGenerator[tuple[str, str], None]:
    """Yield ``(file name, event kinds)`` as they happen, until closed."""
    async with Async(inotify) as wrapped:
        while True:
            for event in await wrapped.read_with(lambda _: read_events(inotify)):
                yield event


async def print_changes(path: str, count: int | None = None) -> None:
    inotify = INotify()
    inotify.add_watch(path, WATCHED)
    seen = 0
    async with aclosing(changes(inotify)) as events:
        async for name, kinds in events:
            print(f"{name:12} {kinds}", flush=True)
            seen += 1
            if seen == count:
                break
    inotify.close()  # a no-op unless no event was ever read


async def make_changes(path: str, sleep: Callable[[float], Awaitable[None]]) -> None:
    """The demo's other task: create, rename and delete files, slowly."""
    for step in range(3):
        await sleep(0.05)
        name = os.path.join(path, f"file{step}.txt")
        with open(name, "w") as f:
            f.write("hello\n")  # CREATE, then MODIFY
        os.rename(name, name + ".old")  # MOVED_FROM, MOVED_TO
    await sleep(0.05)
    os.remove(os.path.join(path, "file0.txt.old"))  # DELETE


DEMO_EVENTS = 3 * 4 + 1


async def demo_asyncio(path: str) -> None:
    async with asyncio.TaskGroup() as tg:
        tg.create_task(print_changes(path, DEMO_EVENTS))
        tg.create_task(make_changes(path, asyncio.sleep))


async def demo_trio(path: str) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        nursery.start_soon(print_changes, path, DEMO_EVENTS)
        nursery.start_soon(make_changes, path, trio.sleep)


def main() -> None:
    parser = argparse.ArgumentParser(description="async directory watcher (inotify + adapt)")
    parser.add_argument("path", nargs="?", help="directory to watch")
    parser.add_argument("--demo", action="store_true", help="watch a temp dir while it changes")
    parser.add_argument("--trio", action="store_true", help="run on trio instead of asyncio")
    args = parser.parse_args()
    if not args.demo and not args.path:
        parser.error("give a directory to watch, or --demo")
    try:
        if args.demo:
            with tempfile.TemporaryDirectory() as tmp:
                print(f"watching {tmp} ({'trio' if args.trio else 'asyncio'})")
                if args.trio:
                    import trio

                    trio.run(demo_trio, tmp)
                else:
                    asyncio.run(demo_asyncio(tmp))
        elif args.trio:
            import trio

            trio.run(print_changes, args.path)
        else:
            asyncio.run(print_changes(args.path))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
