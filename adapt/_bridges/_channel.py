"""Multi-shot callback bridge: ``channel()``, its ``Sender`` and ``Receiver``.

The sender and the receiver share a :class:`~adapt._bridges._buffer.Buffer`; how it
stays bounded, lock-free and cheap to wake is explained there.  This module
adds the two ends: ending the stream (close, fail, a dropped sender), the
consumer's ``on_empty`` hook and its cooperative budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Literal, TypeVar

from .._backends import Backend
from .._errors import ClosedResourceError
from .._resource import AsyncResource
from ._buffer import BUDGET, CLOSED, DROPPED, FAILED, Buffer, ChannelFull, Overflow, RoomWaiter
from ._oneshot import CallbackDropped, check_exception

__all__ = ["ChannelFull", "Overflow", "Receiver", "Sender", "channel"]

T = TypeVar("T")


class Sender(Generic[T]):
    """The producer end of :func:`channel` (made by it): ``send(item)`` from any thread.

    Safe to call from any number of threads.  Items sent after the stream
    ended (or after the consumer closed it) are ignored and counted in
    :attr:`dropped`.  ``close()`` ends the stream after the items already
    sent; ``fail(exc)`` ends it with an error.  A sender that is
    garbage-collected (or ``release()``\\ d) before ``close()`` ends the
    stream with :class:`CallbackDropped`.
    """

    __slots__ = ("__weakref__", "_st")

    def __init__(self, state: Buffer) -> None:
        self._st = state

    def __call__(self, item: T, /, *, timeout: float | None = None) -> None:
        """Send ``item``; with the BLOCK policy wait up to ``timeout`` s for room."""
        st = self._st
        if not st.open:
            st.count_drop()
            return
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")
        credits = st.credits
        if credits is not None:
            if not credits:  # full (checked first: raising IndexError is slow)
                st.full(item, timeout)
                return
            try:
                credits.pop()
            except IndexError:  # another producer took the last credit
                st.full(item, timeout)
                return
        st.buf.append(item)
        if st.parked:
            st.wake()

    @property
    def room(self) -> int | None:
        """Items that fit now without overflowing (``None``: unbounded).

        A producer that must not block or drop -- one running on the event
        loop's thread, with the ``"pace"`` overflow policy -- asks before it
        produces more (0 once an item was taken past the bound)::

            while lib.has_more():                 # sync: send() blocks when full
                send(lib.next())

            if send.room:                         # async pump on the loop thread
                lib.read_some()                   # its callback calls send(item)
            else:
                await send.wait_room()
        """
        credits = self._st.credits
        return None if credits is None else len(credits)

    async def wait_room(self) -> None:
        """Wait until the consumer has made room (drained the buffer to half
        of ``maxsize``), or the stream ended; at once if there is room now.

        For a producer task on the channel's event loop: it parks without
        blocking the loop, so the consumer can run.  See :attr:`room`.
        """
        st = self._st
        backend = st.bind()
        credits = st.credits
        while st.open and credits is not None and not credits:
            token = st.token
            assert token is not None  # bound above
            entry = RoomWaiter(backend.waiter(), token)
            st.blocked.append(entry)
            if not st.open or credits:  # re-check after registering (Dekker)
                st.unblock(entry)
                return

            def abort(entry: RoomWaiter = entry) -> bool:
                st.unblock(entry)
                return True

            await entry.waiter.wait(abort)

    def close(self) -> None:
        """End the stream: the consumer gets the items sent so far, then stops."""
        self._st.finish(CLOSED, None, False)

    def fail(self, exc: BaseException) -> None:
        """End the stream with an error, raised after the items sent so far."""
        self._st.finish(FAILED, check_exception(exc), False)

    def release(self) -> None:
        """Give the sender up unclosed, as if it was garbage-collected."""
        self._st.finish(DROPPED, None, False)

    @property
    def closed(self) -> bool:
        """True once the stream ended or the consumer closed it: stop sending."""
        return not self._st.open

    @property
    def dropped(self) -> int:
        """Items discarded so far: by the overflow policy, or sent after the end."""
        return self._st.dropped

    def __len__(self) -> int:
        """Items buffered, waiting for the consumer."""
        return len(self._st.buf)

    def __del__(self) -> None:
        st = self._st
        if st.end_claim:
            st.finish(DROPPED, None, True)

    def __repr__(self) -> str:
        return f"<adapt.Sender {'closed' if self.closed else 'open'}, {len(self)} buffered>"


class Receiver(AsyncResource, Generic[T]):
    """The consuming end of :func:`channel` (made by it): ``async for item in stream``.

    One task at a time may receive.  Receiving does not suspend while items
    are buffered (but yields once every 128 items).  When the buffer is found
    empty, the ``on_empty`` hook runs once before the task waits.  ``close()``
    (or ``async with stream:``) tells the producer to stop: later sends are
    dropped and blocked producers are released.
    """

    __slots__ = ("_asked", "_budget", "_done", "_on_empty", "_st", "_when_dropped")

    def __init__(
        self, state: Buffer, on_empty: Callable[[], object] | None, when_dropped: str
    ) -> None:
        self._st = state
        self._on_empty = on_empty
        self._when_dropped = when_dropped
        self._asked = False
        self._budget = BUDGET
        self._done = False

    def __aiter__(self) -> Receiver[T]:
        return self

    async def __anext__(self) -> T:
        st = self._st
        if self._budget:
            try:
                item: T = st.buf.popleft()
            except IndexError:
                pass
            else:
                self._budget -= 1
                self._asked = False
                if st.credits is not None:
                    st.repay()
                    if st.blocked and len(st.buf) <= st.low:
                        st.release_blocked()
                return item
        return await self._next()

    async def _next(self) -> T:
        st = self._st
        backend = st.bind()
        if not self._budget:
            self._budget = BUDGET
            await backend.checkpoint()
        while True:
            end = st.end  # read before looking at the buffer: nothing sent is lost
            try:
                item: T = st.buf.popleft()
            except IndexError:
                pass
            else:
                self._budget -= 1
                self._asked = False
                if st.credits is not None:
                    st.repay()
                    if st.blocked and len(st.buf) <= st.low:
                        st.release_blocked()
                return item
            if st.rx_closed:
                raise ClosedResourceError("this stream was closed")
            if end is not None:
                self._finish(*end)
            if not self._asked and self._on_empty is not None:
                self._on_empty()
                self._asked = True
                continue
            if st.blocked:
                st.release_blocked()
            if st.parked:
                raise RuntimeError("another task is already receiving from this stream")
            await self._park(backend)

    async def _park(self, backend: Backend) -> None:
        st = self._st
        parked = st.parked
        waiter = backend.waiter()
        parked.append(waiter)
        if st.buf or st.end is not None or st.rx_closed:
            try:
                parked.remove(waiter)
            except ValueError:
                pass  # a producer took it: its wake-up will be ignored
            return

        def abort() -> bool:
            try:
                parked.remove(waiter)
            except ValueError:
                pass
            return True  # nothing is lost: items stay in the buffer

        await waiter.wait(abort)
        self._budget = BUDGET

    def _finish(self, kind: int, exc: BaseException | None) -> None:
        if self._done or kind == CLOSED:
            raise StopAsyncIteration
        self._done = True
        if kind == FAILED:
            assert exc is not None
            raise exc
        if self._when_dropped == "end":
            raise StopAsyncIteration
        raise CallbackDropped("the sender was garbage-collected or released before close()")

    def close(self) -> None:
        """Stop receiving: later sends are dropped, blocked producers released."""
        st = self._st
        st.rx_closed = True
        st.open = False
        st.buf.clear()
        st.release_blocked()
        if st.parked:
            st.wake()

    async def aclose(self) -> None:
        """Same as :meth:`close` (for ``contextlib.aclosing``)."""
        self.close()

    @property
    def dropped(self) -> int:
        """Items discarded so far: by the overflow policy, or sent after the end."""
        return self._st.dropped

    def __len__(self) -> int:
        """Items buffered, ready to be received without waiting."""
        return len(self._st.buf)

    def __del__(self) -> None:
        st = self._st
        st.rx_closed = True
        st.open = False
        st.release_blocked()

    def __repr__(self) -> str:
        return f"<adapt.Receiver {len(self)} buffered>"


def _check_maxsize(maxsize: object) -> None:
    if maxsize is None:
        return
    if not isinstance(maxsize, int) or isinstance(maxsize, bool):
        raise TypeError(f"maxsize must be an int or None, not {type(maxsize).__name__!r}")
    if maxsize < 1:
        raise ValueError(f"maxsize must be >= 1 (or None for unbounded), not {maxsize}")


class channel(tuple["Sender[T]", "Receiver[T]"]):
    """A multi-shot callback and the async iterator it feeds.

    ``send`` may be called from any thread, and the consumer iterates::

        lib.subscribe(on_item=handle)             # sync: items go to a callback

        send, stream = channel[bytes](maxsize=1000)   # async twin
        lib.subscribe(on_item=send)
        async for item in stream:
            handle(item)

    Args:
        maxsize: buffered items at most (default 1024); ``None`` for an
            unbounded buffer, which the producer can grow without limit.
        overflow: what a send into a full buffer does (:class:`Overflow`):
            block the producer thread (default), drop the oldest item, drop
            the new one, raise :class:`ChannelFull`, or take it past the
            bound (``"pace"``: the producer paces itself with
            :attr:`Sender.room` and :meth:`Sender.wait_room`).
        on_empty: called (in the consuming task) when the buffer runs dry,
            once until the next item arrives, to ask the producer for more:
            one item, a batch, or nothing for a producer that pushes anyway.
        when_dropped: a sender dropped before ``close()`` ends the stream
            with :class:`CallbackDropped` (``"raise"``) or quietly
            (``"end"``), after the items it sent.

    Create the channel in the consuming loop, so that a send from the loop
    thread is recognised (it must never block).  A producer on the loop
    thread that must lose nothing uses ``overflow="pace"`` and waits for
    room itself (:meth:`Sender.wait_room`), as a pump stops reading its
    socket while the consumer is behind.
    """

    __slots__ = ()

    def __new__(  # type: ignore[misc]
        cls,
        maxsize: int | None = 1024,
        *,
        overflow: Overflow | Literal["block", "drop_oldest", "drop_newest", "raise", "pace"] = (
            Overflow.BLOCK
        ),
        on_empty: Callable[[], object] | None = None,
        when_dropped: Literal["raise", "end"] = "raise",
    ) -> tuple[Sender[T], Receiver[T]]:
        _check_maxsize(maxsize)
        if not isinstance(overflow, Overflow):
            try:
                overflow = Overflow(overflow)
            except ValueError:
                choices = ", ".join(repr(o.value) for o in Overflow)
                raise ValueError(
                    f"overflow must be an Overflow ({choices}), not {overflow!r}"
                ) from None
        if maxsize is None and overflow is not Overflow.BLOCK:
            raise ValueError("an unbounded channel never overflows: give a maxsize")
        if on_empty is not None and not callable(on_empty):
            raise TypeError(f"on_empty must be callable, not {type(on_empty).__name__!r}")
        if when_dropped not in ("raise", "end"):
            raise ValueError(f"when_dropped must be 'raise' or 'end', not {when_dropped!r}")
        state = Buffer(maxsize, overflow)
        try:
            state.bind()
        except RuntimeError:
            pass  # created outside a loop: binds to the first loop that receives
        return Sender(state), Receiver(state, on_empty, when_dropped)
