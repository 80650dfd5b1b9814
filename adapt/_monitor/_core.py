"""The loop-stall monitor: a heartbeat on the loop, a watchdog in a thread.

Theory of operation
-------------------
*Heartbeat.*  Every ``period`` (a quarter of the threshold) the loop runs
:meth:`Monitor._beat`: a timer callback on asyncio/uvloop, a system task's
``trio.sleep`` on trio.  The beat reads the clock, and when it ran later
than it was due by ``threshold`` or more, appends ``(due, now)`` to a deque:
the loop could not run anything for that long.  Then it sets the next due
time.  That is all the loop ever does for the monitor: no lock, no thread
hand-off, so the monitor cannot block it (one timer callback every
``period``: 80 a second at the default 50 ms).

*Watchdog.*  A thread sleeps until the next beat is overdue by ``period``
(checking ``_due``, which the loop updates); if the beat came, it sleeps
again.  If not, the loop is stuck: it samples the loop thread's stack with
``sys._current_frames()`` and labels the sample with the due time it saw,
every ``period`` until the beat comes.  A stall of ``threshold`` or more
lasts at least four periods past its due time, so it gets samples whatever
its phase against the beat (at least one at ``2 * period`` from its start).
When a late beat arrives, the watchdog groups the samples of that due
time, attributes the stall to the call site most of them show and records
a :class:`~adapt._monitor._report.Stall`.  A stall's duration is the beat's
lateness: it can miss up to one ``period`` of the blocking call's length,
never add to it.

*GC.*  ``gc.callbacks`` timestamps every collection of a millisecond or
more into a small ring.  A stall that garbage collection covers for at
least half of its length is reported as a GC pause, not as the line that
happened to allocate.
"""

from __future__ import annotations

import collections
import gc
import linecache
import math
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._frames import Sample, call_text, capture
from ._report import StackEntry, Stall, StallReport, aggregate
from ._table import Suggestion, gc_suggestion, suggest, unknown_suggestion

__all__ = ["Monitor", "monitor"]

#: how many long GC collections are remembered
_GC_RING = 64


class Monitor:
    """Watches one running loop for stalls; made by :func:`adapt.monitor`."""

    def __init__(
        self, threshold: float = 0.05, *, on_stall: Callable[[Stall], None] | None = None
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(
                f"threshold must be a number of seconds, not {type(threshold).__name__}"
            )
        if not math.isfinite(threshold) or threshold < 0.001:
            raise ValueError(
                f"threshold must be a finite number of seconds >= 0.001, not {threshold!r}"
            )
        self.threshold = float(threshold)
        self._period = self.threshold / 4
        self._on_stall = on_stall
        self._stalls: list[Stall] = []
        self._lock = threading.Lock()  # _stalls, between the watchdog and report()
        self._state = "new"
        self._loop_name = ""
        self._started = 0.0
        self._stopped = 0.0
        # shared with the loop: written by the loop, read by the watchdog
        self._due = math.inf
        self._late: collections.deque[tuple[float, float]] = collections.deque()
        # asyncio / trio heartbeat handles
        self._loop: Any = None
        self._handle: Any = None
        self._scope: Any = None
        # watchdog
        self._thread_id = 0
        self._wakeup = threading.Event()
        self._watchdog: threading.Thread | None = None
        # gc ring: (start, end, generation), written by the gc callback
        self._gc_min = min(0.001, self.threshold / 10)
        self._gc_start = 0.0
        self._gc_ring: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * _GC_RING
        self._gc_count = 0

    def __repr__(self) -> str:
        return f"<Monitor {self._state} threshold={self.threshold:g}s on {self._loop_name or '-'}>"

    # -- public ---------------------------------------------------------------

    def __enter__(self) -> Monitor:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    async def __aenter__(self) -> Monitor:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def report(self) -> StallReport:
        """The stalls so far (or in all, once the monitor has exited)."""
        with self._lock:
            stalls = list(self._stalls)
        end = self._stopped if self._state == "stopped" else time.monotonic()
        monitored = max(0.0, end - self._started) if self._started else 0.0
        return aggregate(stalls, self.threshold, monitored)

    # -- starting and stopping (in the loop thread) ----------------------------

    def _start(self) -> None:
        import sniffio

        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = ""
        if library == "asyncio":
            import asyncio

            self._start_asyncio(asyncio.get_running_loop())
        elif library == "trio":
            self._start_trio()
        else:
            raise RuntimeError(
                "adapt.monitor() watches the running loop: enter it inside an asyncio, "
                "uvloop or trio program (to watch a whole program from outside, run "
                "`python -m adapt doctor -- python app.py`)"
                + (f"; {library!r} is not supported" if library else "")
            )

    def _check_new(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"this monitor was started already ({self._state}); make a new one")

    def _start_asyncio(self, loop: Any) -> None:
        self._check_new()
        self._loop = loop
        self._loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        self._begin()
        self._handle = loop.call_later(self._period, self._beat_asyncio)

    def _start_trio(self) -> None:
        import trio

        self._check_new()
        self._loop_name = "trio"
        self._begin()
        trio.lowlevel.spawn_system_task(self._heartbeat_trio, name="adapt.monitor heartbeat")

    def _begin(self) -> None:
        self._state = "running"
        self._thread_id = threading.get_ident()
        self._started = time.monotonic()
        self._due = self._started + self._period
        gc.callbacks.append(self._gc_callback)
        self._watchdog = threading.Thread(
            target=self._watch, name=f"adapt.monitor watchdog ({self._loop_name})", daemon=True
        )
        self._watchdog.start()

    def _stop(self) -> None:
        if self._state != "running":
            return
        self._state = "stopped"
        now = time.monotonic()
        self._stopped = now
        if now - self._due >= self.threshold:
            self._late.append((self._due, now))  # stalled until the loop stopped
        self._due = math.inf
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._scope is not None:
            self._scope.cancel()
        try:
            gc.callbacks.remove(self._gc_callback)
        except ValueError:
            pass
        self._wakeup.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        self._loop = None

    # -- the loop's side: nothing but this ------------------------------------

    def _beat(self) -> None:
        now = time.monotonic()
        due = self._due
        if now - due >= self.threshold:
            self._late.append((due, now))  # before _due moves on: see _finish
        self._due = now + self._period

    def _beat_asyncio(self) -> None:
        self._beat()
        self._handle = self._loop.call_later(self._period, self._beat_asyncio)

    async def _heartbeat_trio(self) -> None:
        import trio

        with trio.CancelScope() as scope:
            self._scope = scope
            if self._state != "running":
                return
            while True:
                self._beat()  # first: a stall before this task first ran counts
                await trio.sleep(self._period)

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_start = now
        elif now - self._gc_start >= self._gc_min:
            self._gc_ring[self._gc_count % _GC_RING] = (self._gc_start, now, info["generation"])
            self._gc_count += 1

    # -- the watchdog thread --------------------------------------------------

    def _watch(self) -> None:
        pending: list[tuple[float, Sample]] = []  # (due time it was taken in, sample)
        while self._state == "running":
            due = self._due
            self._finish(pending)
            wait = due + self._period - time.monotonic()
            if wait > 0:
                self._wakeup.wait(wait)
                continue
            frame = sys._current_frames().get(self._thread_id)
            if frame is not None and self._due == due:
                sample = capture(frame)
                if self._due == due:  # still stalled: the sample shows the stall
                    pending.append((due, sample))
            del frame
            self._wakeup.wait(self._period)
        self._finish(pending)

    def _finish(self, pending: list[tuple[float, Sample]]) -> None:
        """Record the stalls whose late beat has come, with their samples."""
        current = self._due  # read before draining: see _beat
        while self._late:
            due, end = self._late.popleft()
            self._record(end - due, due, end, [s for d, s in pending if d == due])
        pending[:] = [(d, s) for d, s in pending if d >= current]

    def _record(self, duration: float, start: float, end: float, samples: list[Sample]) -> None:
        covered, generation = self._gc_time(start, end)
        if covered >= duration / 2:
            stall = self._stall_without_site(
                "gc", duration, len(samples), gc_suggestion(generation)
            )
        elif samples:
            stall = self._stall_from(samples, duration)
        else:
            stall = self._stall_without_site("unknown", duration, 0, unknown_suggestion())
        with self._lock:
            self._stalls.append(stall)
        if self._on_stall is not None:
            self._on_stall(stall)

    def _gc_time(self, start: float, end: float) -> tuple[float, int]:
        covered, generation = 0.0, 0
        for gc_start, gc_end, gen in tuple(self._gc_ring):
            overlap = min(end, gc_end) - max(start, gc_start)
            if overlap > 0:
                covered += overlap
                generation = max(generation, gen)
        return covered, generation

    def _stall_without_site(
        self, kind: str, duration: float, samples: int, suggestion: Suggestion
    ) -> Stall:
        name = "<garbage collection>" if kind == "gc" else "<not sampled>"
        return Stall(
            kind=kind,
            loop=self._loop_name,
            duration=duration,
            site=StackEntry(name, 0, "", ""),
            call="",
            stack=(),
            suggestion=suggestion,
            samples=samples,
        )

    def _stall_from(self, samples: list[Sample], duration: float) -> Stall:
        # the call site most samples show (the latest one on a tie)
        counts: collections.Counter[tuple[object, int]] = collections.Counter()
        chosen: dict[tuple[object, int], tuple[Sample, int]] = {}
        for sample in samples:
            index = _site_index(sample)
            frame = sample.frames[index]
            key = (frame.code, frame.lineno)
            counts[key] += 1
            chosen[key] = (sample, index)
        best = max(counts.values())
        key = next(k for k in reversed(chosen) if counts[k] == best)
        sample, index = chosen[key]
        site = sample.frames[index]
        call = call_text(site.code, site.lasti)
        callee = sample.callee if index == 0 else None
        suggestion = suggest(
            call=call,
            library_modules=tuple(f.module for f in sample.frames[:index]),
            function=callee.function if callee else "",
            receiver=callee.receiver if callee else (),
            fd_kind=callee.fd_kind if callee else "",
            loop=self._loop_name,
        )
        # the stack up to the loop's own machinery (or the outermost user frame)
        loop_frames = [i for i, f in enumerate(sample.frames) if f.module.startswith(_LOOPS)]
        users = [i for i, f in enumerate(sample.frames) if f.user]
        if loop_frames and loop_frames[0] > 0:
            outer = loop_frames[0] - 1
        else:
            outer = users[-1] if users else len(sample.frames) - 1
        stack = tuple(_entry(f.code.co_filename, f.lineno, f.code.co_name) for f in sample.frames)
        return Stall(
            kind="call",
            loop=self._loop_name,
            duration=duration,
            site=stack[index],
            call=call,
            stack=stack[outer::-1],
            suggestion=suggestion,
            samples=len(samples),
        )


#: modules of the loops' own machinery, cut from reported stacks
_LOOPS = ("asyncio.", "uvloop", "trio._core", "anyio._backends", "adapt._monitor")


def _site_index(sample: Sample) -> int:
    """The program's own innermost frame (or the innermost frame)."""
    return next((i for i, f in enumerate(sample.frames) if f.user), 0)


def _entry(filename: str, lineno: int, function: str) -> StackEntry:
    return StackEntry(filename, lineno, function, linecache.getline(filename, lineno).strip())


def monitor(threshold: float = 0.05) -> Monitor:
    """Watch the running loop for stalls of ``threshold`` seconds or more.

    A context manager (``with`` or ``async with``), entered inside a running
    asyncio, uvloop or trio program; :meth:`Monitor.report` then says where
    the loop was stuck, how often and how long, and which adapt tool moves
    that call off the loop::

        await app()                         # sync calls inside stall the loop, unseen
        async with adapt.monitor() as m:    # the same, watched:
            await app()
        print(m.report().format())          # where it stalled, and the fix

    The loop only runs a timer callback every ``threshold / 4``; a watchdog
    thread samples the loop thread's stack when that callback is late.  To
    watch a whole program without changing it, run it with
    ``python -m adapt doctor -- python app.py``.
    """
    return Monitor(threshold)
