"""The buffer behind ``channel()``: bounded, lock-free, with coalesced wake-ups.

Theory of operation
-------------------
A multi-shot callback is the other end of a stream: ``send(item)`` runs in
a library's thread (or in the loop thread), ``async for item in stream``
runs in a task.  The obvious bridge, ``loop.call_soon_threadsafe(
queue.put_nowait, item)`` per item, costs a handle, a self-pipe write and a
loop wake-up for every item, is unbounded, and cannot push back on the
producer.  What we do instead:

* **One shared buffer, no hop per item.**  Producers append to a ``deque``
  and the consumer pops from it directly; both operations are atomic.  The
  loop is involved only to wake a consumer that is *parked* on an empty
  buffer.
* **Coalesced wake-ups.**  A parked consumer leaves its waiter in a
  one-element list; the first send after it pops the waiter (atomically, so
  exactly one producer gets it) and schedules the wake-up; the sends that
  follow find the list empty and cost nothing more.  The consumer then drains
  the whole burst without parking: one loop wake-up per burst, not per item.
  A producer that already is in the loop thread wakes the consumer directly
  (``token.is_current()``), without a round trip through the loop.
* **No lost wake-up without a lock.**  The producer appends, *then* looks
  for a parked waiter; the consumer parks its waiter, *then* looks at the
  buffer again (Dekker's ordering).  At least one sees the other.
* **Bounded, without a lock on the fast path.**  ``maxsize`` credits sit in
  a list; a send pops one (atomically) before appending and a receive puts
  one back after popping.  No credit means full, and the overflow policy
  decides: block the producer thread, drop the oldest item (its credit is
  inherited), drop the new one, or raise.  The bound is exact however many
  threads send.
* **Blocking without blocking the loop.**  A blocked producer parks on a
  private ``threading.Lock`` listed in ``blocked``; the consumer releases
  them all once the buffer has drained to half (hysteresis: a full buffer
  does not ping-pong the threads for every item).  A producer in the loop
  thread must never block -- the consumer could not run -- so it gets
  :class:`ChannelFull` instead -- or, with the ``PACE`` policy, the item
  past the bound: it owes a credit (``owed``), which the consumer repays
  instead of returning one, so the bound holds again once it has caught up.
  Such a producer asks ``Sender.room`` before producing, and parks in
  ``Sender.wait_room()`` -- a loop waiter listed in ``blocked`` like a
  thread's lock, released by the same hysteresis.
* **Finalizers take no lock either.**  A dropped sender ends the stream from
  ``__del__``, which may run in any thread, even inside one of our own
  operations; every step it takes is a single atomic operation, and it wakes
  the consumer only through the loop token.  (The one lock guards the drop
  counter; no finalizer takes it, and nothing is allocated while it is held.)

"Atomic" means one call of ``deque.append`` / ``popleft`` or ``list.pop`` /
``append`` / ``remove``: single operations under CPython's GIL, and still on
free-threaded builds, which lock each container for the duration of a call.
* **Cooperative budget.**  Receiving from a non-empty buffer does not
  suspend (like ``asyncio.Queue.get``), so a consumer that keeps up with a
  fast producer would starve the loop; after 128 items in a row it yields
  once (a checkpoint, where cancellation is delivered too).
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from typing import Any

from .._backends import Backend, LoopToken, Waiter, current_backend

__all__ = [
    "BUDGET",
    "CLOSED",
    "DROPPED",
    "FAILED",
    "Buffer",
    "ChannelFull",
    "Overflow",
    "RoomWaiter",
]

#: items received in a row before the consumer yields to the loop once
BUDGET = 128

#: how a stream ended
CLOSED, FAILED, DROPPED = range(3)


class Overflow(enum.Enum):
    """What ``send(item)`` does when a bounded :func:`channel` is full."""

    #: wait for room (in a foreign thread; the loop thread gets ChannelFull)
    BLOCK = "block"
    #: discard the oldest buffered item to make room, and count it
    DROP_OLDEST = "drop_oldest"
    #: discard the item being sent, and count it
    DROP_NEWEST = "drop_newest"
    #: raise :class:`ChannelFull`; the caller keeps the item
    RAISE = "raise"
    #: take the item past the bound, never blocking nor losing it: the
    #: producer paces itself with ``Sender.room`` / ``await Sender.wait_room()``
    #: (a producer on the loop thread, a pump that reads a batch at a time)
    PACE = "pace"


class ChannelFull(Exception):
    """``send(item)`` could not take the item: the channel is full.

    Raised by the ``RAISE`` policy, by the ``BLOCK`` policy when its
    ``timeout`` expires, and by ``BLOCK`` in the event loop's own thread,
    which must not block.  The item was not sent::

        try:
            send(item)
        except ChannelFull:
            ...   # retry later, or drop it knowingly
    """


class Buffer:
    """What a sender and its receiver share (the receiver also keeps the hooks)."""

    __slots__ = (
        "backend",
        "blocked",
        "buf",
        "credits",
        "dropped",
        "end",
        "end_claim",
        "lock",
        "low",
        "maxsize",
        "open",
        "overflow",
        "owed",
        "parked",
        "rx_closed",
        "token",
    )

    def __init__(self, maxsize: int | None, overflow: Overflow) -> None:
        self.buf: deque[Any] = deque()
        self.maxsize = maxsize
        self.credits: list[None] | None = None if maxsize is None else [None] * maxsize
        self.low = 0 if maxsize is None else maxsize // 2
        self.overflow = overflow
        #: producers waiting for room: a thread's private lock, or a
        #: loop task's :class:`RoomWaiter`
        self.blocked: list[threading.Lock | RoomWaiter] = []
        #: one entry per item taken past the bound (``PACE``), not yet repaid
        self.owed: list[None] = []
        #: the consumer's waiter while it is parked (at most one)
        self.parked: list[Waiter] = []
        #: False once ended (by the sender) or closed (by the receiver)
        self.open = True
        self.rx_closed = False
        self.end: tuple[int, BaseException | None] | None = None
        self.end_claim: list[None] = [None]
        self.dropped = 0
        self.lock = threading.Lock()  # guards ``dropped`` only; never held across a call
        self.token: LoopToken | None = None
        self.backend: Backend | None = None

    # -- binding ----------------------------------------------------------

    def bind(self) -> Backend:
        backend = self.backend
        if backend is None:
            backend = current_backend()
            self.token = backend.token()
            self.backend = backend
        else:
            token = self.token
            assert token is not None
            if not token.is_current():
                raise RuntimeError(
                    "this channel belongs to another event loop; "
                    "create it in the loop (or thread) that consumes it"
                )
        return backend

    # -- producer side ------------------------------------------------------

    def count_drop(self) -> None:
        with self.lock:
            self.dropped += 1

    def wake(self, finalizer: bool = False) -> None:
        """Wake the parked consumer, if any (exactly one caller gets it)."""
        try:
            waiter = self.parked.pop()
        except IndexError:
            return
        token = self.token
        assert token is not None  # a parked consumer has bound the channel
        if not finalizer and token.is_current():
            waiter.wake()
        else:
            try:
                token.run_sync_soon(waiter.wake)
            except RuntimeError:
                pass  # the loop has ended, and the consumer with it

    def full(self, item: object, timeout: float | None) -> None:
        """``send(item)`` found no credit: apply the overflow policy."""
        overflow = self.overflow
        if overflow is Overflow.DROP_NEWEST:
            self.count_drop()
        elif overflow is Overflow.RAISE:
            raise ChannelFull(f"the channel is full ({self.maxsize} items)")
        elif overflow is Overflow.DROP_OLDEST:
            self.replace_oldest(item)
        elif overflow is Overflow.PACE:
            self.owed.append(None)  # first: the consumer must not return a credit for it
            self.buf.append(item)
            if self.parked:
                self.wake()
        else:
            self.block(item, timeout)

    def replace_oldest(self, item: object) -> None:
        credits = self.credits
        assert credits is not None
        while self.open:
            try:
                self.buf.popleft()
            except IndexError:
                # the consumer emptied it meanwhile, or other producers hold
                # every credit between their pop and their append
                try:
                    credits.pop()
                except IndexError:
                    time.sleep(0)  # let the thread that owes a credit run
                    continue
            else:
                self.count_drop()  # we take over the credit of the item dropped
            self.buf.append(item)
            if self.parked:
                self.wake()
            return
        self.count_drop()

    def block(self, item: object, timeout: float | None) -> None:
        token = self.token
        if token is not None and token.is_current():
            raise ChannelFull(
                f"the channel is full ({self.maxsize} items) and send() would block "
                "the event loop thread, where the consumer runs; send from another "
                "thread, or choose another overflow policy"
            )
        credits = self.credits
        assert credits is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            lock = threading.Lock()
            lock.acquire()
            self.blocked.append(lock)
            # re-check after registering (Dekker's ordering again)
            if not self.open:
                self.unblock(lock)
                self.count_drop()
                return
            try:
                credits.pop()
            except IndexError:
                pass
            else:
                self.unblock(lock)
                self.buf.append(item)
                if self.parked:
                    self.wake()
                return
            if deadline is None:
                lock.acquire()
            elif not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self.unblock(lock)
                raise ChannelFull(f"the channel stayed full ({self.maxsize} items) for {timeout} s")

    def unblock(self, lock: threading.Lock | RoomWaiter) -> None:
        try:
            self.blocked.remove(lock)
        except ValueError:
            pass  # the consumer took it and released it: nothing to undo

    def release_blocked(self) -> None:
        blocked = self.blocked
        while blocked:
            try:
                lock = blocked.pop()
            except IndexError:
                return
            lock.release()

    def repay(self) -> None:
        """An item was received: return its credit, or repay one it owed."""
        credits = self.credits
        assert credits is not None
        if self.owed:
            self.owed.pop()  # only the consumer pops: it cannot be empty now
        else:
            credits.append(None)

    def finish(self, kind: int, exc: BaseException | None, finalizer: bool) -> None:
        try:
            self.end_claim.pop()
        except IndexError:
            return  # already ended: later calls are ignored
        self.end = (kind, exc)
        self.open = False
        self.release_blocked()
        if self.parked:
            self.wake(finalizer)


class RoomWaiter:
    """A loop task in ``Sender.wait_room()``, listed in ``Buffer.blocked``;
    ``release()`` (from any thread) wakes it in its loop."""

    __slots__ = ("token", "waiter")

    def __init__(self, waiter: Waiter, token: LoopToken) -> None:
        self.waiter = waiter
        self.token = token

    def release(self) -> None:
        if self.token.is_current():
            self.waiter.wake()
        else:
            try:
                self.token.run_sync_soon(self.waiter.wake)
            except RuntimeError:
                pass  # the loop has ended, and the waiting task with it
