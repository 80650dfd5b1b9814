"""inotify events, awaited: the ``inotify`` recipe of adapt.

``inotify_recipe.py`` beside this file is that recipe, copied into the
project the way recipes are meant to be owned::

    python -m adapt recipes copy inotify examples/inotify/watcher/inotify_recipe.py

(``tests/test_watcher.py`` checks that the copy is up to date.)

inotify_simple is a synchronous library.  ``INotify.read(timeout=0)``
returns ``[]`` when no event is queued: that empty list is its "would
block" signal.  The recipe turns it into
:class:`adapt.WouldBlock`, so ``await watcher.read()`` waits until the loop
reports the fd readable and reads again -- no thread, no polling.  A read
cancelled while it waits has consumed nothing, so the main loop can wrap it
in a timeout freely.

The recipe raises :class:`QueueOverflow` when the kernel dropped events;
this module hands it on as an ``IN_Q_OVERFLOW`` event after the events read
with it, so the window deals with overflow in order, like any other event.
"""

from __future__ import annotations

from inotify_simple import Event, INotify, flags

from .inotify_recipe import QueueOverflow, Watcher

OVERFLOW = Event(wd=-1, mask=flags.Q_OVERFLOW, cookie=0, name="")


class EventSource:
    """``await source.next_batch()`` returns the next batch of raw events."""

    def __init__(self, inotify: INotify) -> None:
        self._watcher = Watcher(inotify)  # sets O_NONBLOCK on the inotify fd

    async def next_batch(self) -> list[Event]:
        try:
            return await self._watcher.read()
        except QueueOverflow as overflow:
            return [*overflow.events, OVERFLOW]

    async def aclose(self) -> None:
        """Deregister the inotify fd from the loop and close it."""
        await self._watcher.aclose()
