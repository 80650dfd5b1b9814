"""The loop-stall monitor: a watchdog thread, and a heartbeat it asks the loop for.

Theory of operation
-------------------
*Heartbeat.*  Every ``period`` (half the threshold) the watchdog thread
notes the time in ``_posted`` and asks the loop to run
:meth:`Monitor._beat` soon (``call_soon_threadsafe`` on asyncio and uvloop,
``TrioToken.run_sync_soon`` on trio).  The beat reads the clock; when it ran
``threshold`` or more after it was asked for, it appends ``(posted, now)``
to a deque: the loop could not run anything for that long.  It then sets
``_answered``.  That is all the loop ever does for the monitor: no lock,
nothing that waits, so the monitor cannot block it.  (A timer callback
re-armed on the loop would do the same job, but a pending timer made
adapt's asyncio ping-pong about 7% slower, measured: the loop then
computes a timeout on every iteration.)  One request costs about 200 us of
CPU time in all on a loaded 2-CPU VM (the watchdog's wake-up, the loop's),
measured on an idle loop: hence half the threshold, not less -- 40
requests a second at the default 50 ms, under 1% of a CPU.

*Watchdog.*  After each request the watchdog sleeps ``period``; if the beat
has not answered by then, the loop is stuck: it samples the loop thread's
stack with ``sys._current_frames()``, labels the sample with the request's
time, and samples again every ``period / 2`` until the answer comes.  A
stall of ``1.5 * threshold`` or more has a request posted within its first
``period`` and a sample within its first ``2 * period``, so it is always
reported, with its line; one between ``threshold`` and that, depending on
its phase.  When a late beat is noted, the watchdog takes the samples with
its label, attributes the stall to the call site most of them show and
records a :class:`~adapt._monitor._report.Stall`.  A stall's duration is the
beat's lateness: it can miss up to one ``period`` of the blocking call's
length (the part before the request), never add to it.

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
import types
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._frames import Sample, call_text, capture
from ._report import StackEntry, Stall, StallReport, aggregate
from ._table import Suggestion, gc_suggestion, idle_suggestion, suggest, unknown_suggestion

__all__ = ["Monitor", "monitor"]

#: how many long GC collections are remembered
_GC_RING = 64


class Monitor:
    """Watches one running loop for stalls; made by :func:`adapt.monitor`.

    ``Monitor(threshold, on_stall=fn)`` also calls ``fn(stall)`` with each
    :class:`~adapt.Stall` as it ends, in the watchdog thread (keep it short:
    log it, or hand it to the loop with ``call_soon_threadsafe``).
    """

    def __init__(
        self, threshold: float = 0.05, *, on_stall: Callable[[Stall], None] | None = None
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"threshold must be a number of seconds, not {type(threshold).__name__}"
            )
        if not math.isfinite(threshold) or threshold < 0.001:
            raise ValueError(
                f"threshold must be a finite number of seconds >= 0.001, not {threshold!r}"
            )
        self.threshold = float(threshold)
        self._period = self.threshold / 2  # between requests (see above)
        self._on_stall = on_stall
        self._stalls: list[Stall] = []
        self._lock = threading.Lock()  # _stalls, between the watchdog and report()
        self._state = "new"
        self._loop_name = ""
        self._started = 0.0
        self._stopped = 0.0
        # shared with the loop: _posted written by the watchdog, the rest by the loop
        self._posted = 0.0
        self._answered = 0.0
        self._late: collections.deque[tuple[float, float]] = collections.deque()
        # asks the loop to run a function soon, from the watchdog thread
        self._post: Callable[[Callable[[], None]], object] | None = None
        # watchdog
        self._thread_id = 0
        self._cpu_clock = time.CLOCK_THREAD_CPUTIME_ID
        # the watchdog sleeps by acquiring this held lock with a timeout; _stop
        # releases it for good
        self._sleeper = threading.Lock()
        self._sleeper.acquire()
        self._watchdog: threading.Thread | None = None
        # gc ring: (start, end, generation), written by the gc callback
        self._gc_min = min(0.001, self.threshold / 10)
        self._gc_start = 0.0
        self._gc_ring: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * _GC_RING
        self._gc_count = 0
        self._gc_done = 0  # ring entries _check_gc has looked at
        self._covered = 0.0  # the end of the last stall recorded

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
        self._loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        self._post = loop.call_soon_threadsafe
        self._begin()

    def _start_trio(self) -> None:
        import trio

        self._check_new()
        self._loop_name = "trio"
        self._post = trio.lowlevel.current_trio_token().run_sync_soon
        self._begin()

    def _begin(self) -> None:
        self._state = "running"
        self._thread_id = threading.get_ident()
        self._cpu_clock = time.pthread_getcpuclockid(self._thread_id)
        self._started = time.monotonic()
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
        posted = self._posted
        if self._answered < posted and now - posted >= self.threshold:
            self._late.append((posted, now))  # stalled until the loop stopped
        try:
            gc.callbacks.remove(self._gc_callback)
        except ValueError:
            pass
        self._sleeper.release()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        self._post = None

    # -- the loop's side: nothing but this ------------------------------------

    def _beat(self) -> None:
        if self._state != "running":
            return  # a request left over from a stopped monitor
        now = time.monotonic()
        posted = self._posted
        if now - posted >= self.threshold:
            self._late.append((posted, now))  # before answering: see _watch
        self._answered = now

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_start = now
        elif now - self._gc_start >= self._gc_min:
            self._gc_ring[self._gc_count % _GC_RING] = (self._gc_start, now, info["generation"])
            self._gc_count += 1

    # -- the watchdog thread --------------------------------------------------

    def _watch(self) -> None:
        pending: list[tuple[float, Sample]] = []  # (request it was taken under, sample)
        period = self._period
        held: tuple[float, Sample | None] | None = None  # see _wait_and_check_gil
        while self._state == "running":
            posted = time.monotonic() if held is None else held[0]
            self._posted = posted
            try:
                assert self._post is not None
                self._post(self._beat)
            except RuntimeError:  # the loop is closed (trio: RunFinishedError)
                break
            if held is not None and held[1] is not None:
                pending.append((posted, held[1]))
            held = self._wait_and_check_gil(period, posted)
            while self._answered < posted and self._state == "running":
                frame = sys._current_frames().get(self._thread_id)  # pyright: ignore[reportPrivateUsage]
                if frame is not None and self._answered < posted:
                    sample = capture(frame)
                    if self._answered < posted:  # still stalled: the sample shows the stall
                        pending.append((posted, sample))
                del frame
                self._sleep(period / 2)
            self._finish(pending)
            self._check_gc()
        self._finish(pending)
        self._check_gc()

    def _check_gc(self) -> None:
        """Record the long collections no heartbeat stall took in.

        A collection holds the GIL: when it starts while no request is out,
        the loop answers the next one on time, so the ring is the only
        witness.
        """
        count = self._gc_count
        for k in range(max(self._gc_done, count - _GC_RING), count):
            start, end, generation = self._gc_ring[k % _GC_RING]
            if end - start >= self.threshold and start >= self._covered:
                self._covered = end
                suggestion = gc_suggestion(generation)
                self._record_stall(self._stall_without_site("gc", end - start, 0, suggestion))
        self._gc_done = count

    def _sleep(self, seconds: float) -> None:
        if self._sleeper.acquire(timeout=seconds):
            self._sleeper.release()  # stopped: every later sleep returns at once

    def _wait_and_check_gil(
        self, period: float, posted: float
    ) -> tuple[float, Sample | None] | None:
        """Sleep ``period``; notice a stall that kept this thread from the GIL.

        C code that holds the GIL (garbage collection, a big ``json.loads``)
        stalls the loop without letting this thread run: a request posted
        after it started is answered on time once it ends.  But this
        thread's wake-up then came late by as long, while the loop thread
        was busy: its CPU clock ran for half the time or more.  (Pure Python
        code gives the GIL up within the 5 ms switch interval, so this
        thread can only be kept out that long by C code holding the GIL, or
        by the machine not running it -- which a loop thread that got half a
        CPU meanwhile makes unlikely.  On a machine so loaded that the loop
        thread gets less, such a stall goes unseen.)  The sample taken the
        moment the GIL comes back shows the line that held it.

        Returns when the next request should have been made, and that
        sample: the next request is dated then, so the late beat measures
        the stall from its start, as one stall however long it lasts after
        the GIL came back.
        """
        start = time.monotonic()
        cpu_start = time.clock_gettime(self._cpu_clock)
        self._sleep(period)
        late = time.monotonic() - start - period
        answered = self._answered
        if late < self.threshold or answered < posted or self._state != "running":
            return None  # on time, or the late beat measures this stall
        if answered - posted >= self.threshold:
            return None  # the request was answered late: the beat measured it
        if time.clock_gettime(self._cpu_clock) - cpu_start < 0.5 * late:
            return None  # the loop thread was not running: not its stall
        if self._gc_start >= start:
            # a collection (perhaps still in its callbacks: this thread can
            # get the GIL there): _check_gc records it once it is done
            return None
        frame = sys._current_frames().get(self._thread_id)  # pyright: ignore[reportPrivateUsage]
        sample = None if frame is None else capture(frame)
        del frame
        return start + period, sample

    def _finish(self, pending: list[tuple[float, Sample]]) -> None:
        """Record the stalls whose late beat has come, with their samples."""
        while self._late:
            posted, end = self._late.popleft()
            self._record(end - posted, posted, end, [s for p, s in pending if p == posted])
        # the beat notes a late answer before it answers, so every sample
        # older than the last answer has been used or belongs to no stall
        answered = self._answered
        pending[:] = [(p, s) for p, s in pending if p > answered]

    def _record(self, duration: float, start: float, end: float, samples: list[Sample]) -> None:
        self._covered = max(self._covered, end)
        covered, generation = self._gc_time(start, end)
        if covered >= duration / 2:
            stall = self._stall_without_site(
                "gc", duration, len(samples), gc_suggestion(generation)
            )
        elif samples:
            stall = self._stall_from(samples, duration)
        else:
            stall = self._stall_without_site("unknown", duration, 0, unknown_suggestion())
        self._record_stall(stall)

    def _record_stall(self, stall: Stall) -> None:
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
        name = {"gc": "<garbage collection>", "idle": "<event loop>"}.get(kind, "<not sampled>")
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
        # (None: the loop thread was in the loop's own code, see _IDLE)
        counts: collections.Counter[tuple[types.CodeType, int] | None] = collections.Counter()
        chosen: dict[tuple[types.CodeType, int] | None, tuple[Sample, int]] = {}
        for sample in samples:
            index = _site_index(sample)
            frame = sample.frames[index]
            idle = sample.frames[0].module.startswith(_IDLE)
            key = None if idle else (frame.code, frame.lineno)
            counts[key] += 1
            chosen[key] = (sample, index)
        best = max(counts.values())
        key = next(k for k in reversed(chosen) if counts[k] == best)
        sample, index = chosen[key]
        if key is None:
            return self._stall_without_site("idle", duration, len(samples), idle_suggestion())
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
#: a sample whose innermost frame is here caught the loop in its own code
#: (its poll, or C callbacks on uvloop): the program did not stall it
_IDLE = (*_LOOPS, "selectors")


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

    The loop only runs a tiny callback a watchdog thread asks for every
    ``threshold / 2``; the watchdog samples the loop thread's stack when
    that callback is late.  Stalls of ``1.5 * threshold`` or more are always
    reported.  To
    watch a whole program without changing it, run it with
    ``python -m adapt doctor -- python app.py``.
    """
    return Monitor(threshold)
