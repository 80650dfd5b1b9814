"""Async file-system events from inotify_simple, without a thread.

Requires: inotify-simple >= 1.3.5 (``pip install inotify-simple``).

Platforms: Linux.

Adapts: ``inotify_simple.INotify``: ``read()`` becomes ``await
watcher.read()`` and ``async for event in watcher``.  The library's
would-block signal is ``read(timeout=0)`` returning ``[]``; the op raises
:class:`adapt.WouldBlock` for it, so adapt waits until the inotify fd is
readable and reads again.  ``add_watch`` / ``rm_watch`` are quick system
calls and stay sync: call them at any time, also while a task waits for
events (a removed watch ends with an ``IGNORED`` event for its ``wd``).

Mode: an ``INotify`` is an ``io.FileIO``, a kind adapt knows:
``Async(inotify)`` sets ``O_NONBLOCK`` (restored when the watcher closes).

Caveats: when the kernel's queue overflows (``max_queued_events``), events
were lost: ``read()`` raises :class:`QueueOverflow`, which carries the events
read before the overflow marker; the watcher stays usable, and the caller
should rescan what it watches.  ``read_delay`` (a sleep) is not offered: it
would block the loop.

Example::

    import asyncio, os, tempfile
    from inotify_simple import flags
    from inotify_recipe import Watcher

    async def main():
        with tempfile.TemporaryDirectory() as folder:
            async with Watcher() as watcher:
                watcher.add_watch(folder, flags.CREATE | flags.DELETE)
                open(os.path.join(folder, "new.txt"), "w").close()
                os.remove(os.path.join(folder, "new.txt"))
                async for event in watcher:
                    kinds = [f.name for f in flags.from_mask(event.mask)]
                    print(event.name, kinds)
                    if "DELETE" in kinds:
                        break

    asyncio.run(main())
"""

from __future__ import annotations

from collections import deque
from typing import Self

from inotify_simple import Event, INotify, flags

from adapt import Async, WouldBlock

__all__ = ["LIBRARY", "SUMMARY", "QueueOverflow", "Watcher"]

LIBRARY = "inotify-simple"
SUMMARY = "Async file-system events from inotify_simple, without a thread."


class QueueOverflow(Exception):
    """The kernel's event queue overflowed: some events were lost.

    ``events`` holds the events read with the overflow marker (none is lost
    by the recipe); rescan the watched paths to catch up.
    """

    def __init__(self, events: list[Event]) -> None:
        super().__init__(f"inotify queue overflow: events were lost ({len(events)} read with it)")
        self.events = events


class Watcher:
    """An ``INotify`` (yours, or a new one) whose events are awaited.

    ::

        events = inotify.read()                  # sync: blocks the thread
        events = await Watcher(inotify).read()   # async
    """

    def __init__(self, inotify: INotify | None = None) -> None:
        self.inotify = INotify() if inotify is None else inotify
        self._wrapper = Async(self.inotify)
        self._pending: deque[Event] = deque()

    def _read_now(self, _: object) -> list[Event]:
        events = self.inotify.read(timeout=0)  # never waits: FIONREAD, then one read
        if not events:
            raise WouldBlock  # inotify_simple's "nothing queued"
        return events

    def add_watch(self, path: str | bytes, mask: int) -> int:
        """``INotify.add_watch``: start watching ``path``; returns its ``wd``."""
        return self.inotify.add_watch(path, mask)

    def rm_watch(self, wd: int) -> None:
        """``INotify.rm_watch``: stop watching (an ``IGNORED`` event follows)."""
        self.inotify.rm_watch(wd)

    async def read(self) -> list[Event]:
        """Wait for events and return all that are queued (at least one)."""
        events = await self._wrapper.read_with(self._read_now)
        if any(event.mask & flags.Q_OVERFLOW for event in events):
            raise QueueOverflow([e for e in events if not e.mask & flags.Q_OVERFLOW])
        return events

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if not self._pending:
            # keep the batch: a cancelled or failed read leaves nothing half-used
            self._pending.extend(await self.read())
        return self._pending.popleft()

    async def aclose(self) -> None:
        """Deregister and close the inotify fd."""
        await self._wrapper.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
