"""inotify's file descriptor, made awaitable with adapt.

inotify_simple is a synchronous library.  ``INotify.read(timeout=0)`` returns
``[]`` when no event is queued: that empty list is its "would block" signal.
The op below turns it into :class:`adapt.WouldBlock`, and ``read_with`` then
waits until the loop reports the fd readable and runs the op again -- no
thread, no polling.  A read cancelled while it waits has consumed nothing,
so the main loop can wrap it in a timeout freely.
"""

from __future__ import annotations

from inotify_simple import Event, INotify

from adapt import Async, WouldBlock


def read_queued(inotify: INotify) -> list[Event]:
    """The op: take every queued event, or signal "would block"."""
    events = inotify.read(timeout=0)
    if not events:
        raise WouldBlock
    return events


class EventSource:
    """``await source.next_batch()`` returns the next batch of raw events."""

    def __init__(self, inotify: INotify) -> None:
        self._inotify = inotify
        self._async = Async(inotify)  # sets O_NONBLOCK; typed as the FileIO it subclasses

    async def next_batch(self) -> list[Event]:
        return await self._async.read_with(lambda _: read_queued(self._inotify))

    def close(self) -> None:
        """Wake any waiter, deregister from the loop, close the inotify fd."""
        self._async.close()
