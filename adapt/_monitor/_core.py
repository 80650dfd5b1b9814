"""The loop-stall monitor: a heartbeat the kernel times, and a watchdog thread.

Theory of operation
-------------------
*Heartbeat.*  A periodic timerfd expires every ``period`` (half the
threshold); the loop watches it like any other file (``add_reader`` on
asyncio and uvloop, a system task in ``wait_readable`` on trio) and runs
:meth:`Monitor._beat` when it is readable.  The beat reads the expiration
count; the oldest unread expiration was due at a time known from the
timer's schedule, and when the beat runs ``threshold`` or more after it,
the beat appends ``(count, due, now)`` to a deque: the loop could not run
anything for that long.  It then re-arms the dead-man timer (below) and
advances ``_expired``.  That is all the loop ever does for the monitor: a
``read``, a ``timerfd_settime`` and some arithmetic, no lock, nothing that
waits, so the monitor cannot block it.  The kernel keeps the time: no
timer on the loop (a pending timer made adapt's asyncio ping-pong about 7%
slower, measured: the loop then computes a timeout on every iteration),
and no other thread takes part while the loop keeps up.

*Dead man's switch.*  The watchdog thread blocks in ``read`` on a second,
one-shot timerfd without the GIL; every beat pushes its expiry
``threshold`` ahead, so a loop that keeps beating never wakes the watchdog.
(The first design had the watchdog wake every ``period`` and ask the loop
for each beat with ``call_soon_threadsafe``: about 4% fewer ping-pong round
trips per CPU second on every loop.  What it saves: the watchdog's 40
wake-ups a second, each taking the GIL.  A thread that wants the GIL while
the loop thread is busy is woken by each of the loop thread's GIL releases
-- every system call -- and tends to lose the race, until the 5 ms switch
interval forces a hand-over.  Measured in interleaved ping-pong rounds
(25, paired, on a loaded machine): a thread doing nothing but wake every
25 ms cost the loop 1-4% of its CPU time, the whole first design 3.5-4.5%;
the request itself -- the loop's wake-up and the self-pipe read -- cost an
idle loop thread 30-140 us, ``benchmarks/bench_monitor.py --parts``.  The
beat's own ``read`` and ``timerfd_settime`` take 3 us; in all a beat costs
a busy loop 15-50 us of CPU, 0.1-0.2% of a CPU at 40 beats a second --
measured with the benchmark's ping-pong and ``run_sync`` cases and
``_period`` set to 1 ms, the dead-man's delay unchanged, so that the beats
come 25 times as often and the watchdog still never wakes: 0.84-0.96x
CPU time per operation against no monitor, interleaved, paired.)  When the switch fires, the loop
has missed a beat by ``threshold - period`` or more: the watchdog samples the
loop thread's stack with ``sys._current_frames()``, labels the sample with
the expiration count it waits on, and samples again every ``period / 2``
until the beat comes.  A stall of ``1.5 * threshold`` or more has an
expiration within its first ``period`` (so its beat is late by
``threshold``) and the switch fires within its first ``threshold`` (the
last beat came before it began), so it is always reported, with its line;
one between ``threshold`` and that, depending on its phase.  A late beat
also fires the switch at once, so the watchdog records every stall as it
ends: it takes the samples with the stall's label, attributes the stall to
the call site they show for the longest time (each sample stands for the
time since the one before) and records a
:class:`~adapt._monitor._report.Stall`.  A stall's duration is the beat's
lateness: it can miss up to one ``period`` of the blocking call's length
(the part before the expiration), never add to it.

*C code holding the GIL* (garbage collection, a big ``json.loads``) delays
the beat like any stall: the kernel's timer expires on time and the beat
runs when the loop thread gets back to Python.  The watchdog woken by the
switch waits for the GIL meanwhile; past the switch interval it asks for
it, so it gets it at the loop thread's first bytecode after the call, and
its sample shows the line that held it.  (A watchdog already sampling
another stall notices the same way: its sleep between samples overran by
a period; it samples at once, under the label of the beat to come.)

*Its own fd table.*  The watchdog thread runs with a file-descriptor table
of its own that holds only its timer (``private_fd_table``): while a
second thread shares the process's table, the kernel takes and drops a
reference on the file in every system call on an fd, which made a busy
uvloop loop about 2.7% slower although the watchdog never woke (25
paired ping-pong rounds: 0.973x with a plain sleeping thread, 0.998x with
one holding its own table).  So the watchdog touches no fd of the
program: it looks at the loop thread's files through ``/proc``, and
``on_stall`` is called on the loop, by the beat after the stall.

*GC.*  ``gc.callbacks`` timestamps every collection of a millisecond or
more into a small ring.  A stall that garbage collection covers for at
least half of its length is reported as a GC pause, not as the line that
happened to allocate.
"""

from __future__ import annotations

import collections
import gc
import math
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._attribute import stall_from, without_site
from ._frames import Sample, complete, snapshot
from ._report import Stall, StallReport, aggregate
from ._table import gc_suggestion, unknown_suggestion
from ._timerfd import TimerFD, private_fd_table

__all__ = ["Monitor", "monitor"]

#: how many long GC collections are remembered
_GC_RING = 64


class Monitor:
    """Watches one running loop for stalls; made by :func:`adapt.monitor`.

    ``Monitor(threshold, on_stall=fn)`` also calls ``fn(stall)`` with each
    :class:`~adapt.Stall`, on the loop, at the heartbeat after the stall
    ended (within ``threshold / 2``), or when the monitor stops (keep it
    short: it runs on the loop it watches).
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
        # stalls recorded by the watchdog, for on_stall on the loop (and
        # the watchdog's failure, to print there: see _deliver)
        self._heard: collections.deque[Stall | BaseException] = collections.deque()
        self._stalls: list[Stall] = []
        self._lock = threading.Lock()  # _stalls, between the watchdog and report()
        self._state = "new"
        self._loop_name = ""
        self._started = 0.0
        self._stopped = 0.0
        # the heartbeat (see above): expiration k of _beats is due at _first + k * period
        self._beats: TimerFD | None = None
        self._deadman: TimerFD | None = None
        self._first = 0.0
        # written by the loop, read by the watchdog: expirations read, late beats
        self._expired = 0
        self._late: collections.deque[tuple[int, float, float]] = collections.deque()
        self._unwatch: Callable[[], None] | None = None  # takes the beat off the loop
        # watchdog
        self._thread_id = 0
        self._fd_dir = ""  # the loop thread's /proc fd directory (see _frames._fd_kind)
        self._wakes = 0  # times the dead-man switch woke the watchdog
        # the watchdog sleeps between samples by acquiring this held lock with
        # a timeout; _stop releases it for good
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
        beats = self._begin()
        loop.add_reader(beats.fd, self._beat)

        def unwatch() -> None:
            try:
                loop.remove_reader(beats.fd)
            except RuntimeError:
                pass  # the loop is closed: nothing is watched any more
            beats.close()

        self._unwatch = unwatch
        self._start_watchdog()

    def _start_trio(self) -> None:
        import trio

        self._check_new()
        self._loop_name = "trio"
        beats = self._begin()
        scope = trio.CancelScope()

        async def beat() -> None:
            try:
                with scope:
                    while True:
                        await trio.lowlevel.wait_readable(beats.fd)
                        self._beat()
            finally:
                beats.close()  # here: trio forgets the fd when the wait ends

        trio.lowlevel.spawn_system_task(beat, name="adapt.monitor heartbeat")
        self._unwatch = scope.cancel
        self._start_watchdog()

    def _begin(self) -> TimerFD:
        """The timers; the caller puts the beat on the loop, then starts the watchdog."""
        self._state = "running"
        self._thread_id = threading.get_ident()
        self._fd_dir = f"/proc/self/task/{threading.get_native_id()}/fd"
        self._beats = TimerFD(blocking=False)
        self._deadman = TimerFD(blocking=True)
        self._started = time.monotonic()
        self._first = self._started + self._period
        self._beats.set(self._first, self._period, absolute=True)
        self._deadman.set(self.threshold)
        gc.callbacks.append(self._gc_callback)
        return self._beats

    def _start_watchdog(self) -> None:
        self._watchdog = threading.Thread(
            target=self._watch, name=f"adapt.monitor watchdog ({self._loop_name})", daemon=True
        )
        # born with every signal blocked, so the kernel never hands it one:
        # Python's C handler would write the loop's wake-up byte to an fd
        # number its own table does not hold, and the signal would be lost
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self._watchdog.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _stop(self) -> None:
        if self._state != "running":
            return
        now = time.monotonic()
        self._stopped = now
        expired = self._expired
        due = self._first + expired * self._period
        if now - due >= self.threshold:
            self._late.append((expired, due, now))  # stalled until the loop stopped
        self._state = "stopped"
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        try:
            gc.callbacks.remove(self._gc_callback)
        except ValueError:
            pass
        self._sleeper.release()
        assert self._deadman is not None
        self._deadman.set(0)  # wakes the watchdog now: it sees "stopped"
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        self._deadman.close()
        if self._heard:
            self._deliver()

    # -- the loop's side: nothing but this ------------------------------------

    def _beat(self) -> None:
        assert self._beats is not None
        assert self._deadman is not None
        count = self._beats.read()
        if not count or self._state != "running":
            return
        now = time.monotonic()
        expired = self._expired
        due = self._first + expired * self._period  # the oldest expiration read now
        late = now - due >= self.threshold
        if late:
            self._late.append((expired, due, now))  # before _expired moves: see _watch
        self._expired = expired + count  # before the watchdog may wake: no sample of this
        self._deadman.set(0 if late else self.threshold)  # late: the watchdog records it now
        if self._heard:
            self._deliver()

    def _deliver(self) -> None:
        """Hand the stalls the watchdog recorded to ``on_stall``, and print
        the watchdog's failure, if any -- here on the loop."""
        while self._heard:
            item = self._heard.popleft()
            if isinstance(item, BaseException):
                print(
                    "adapt.monitor: the watchdog failed; stalls are no longer sampled",
                    file=sys.stderr,
                )
                sys.excepthook(type(item), item, item.__traceback__)
                continue
            try:
                if self._on_stall is not None:
                    self._on_stall(item)
            except Exception as exc:
                sys.excepthook(type(exc), exc, exc.__traceback__)  # printed; the loop goes on

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_start = now
        elif now - self._gc_start >= self._gc_min:
            self._gc_ring[self._gc_count % _GC_RING] = (self._gc_start, now, info["generation"])
            self._gc_count += 1

    # -- the watchdog thread --------------------------------------------------

    def _watch(self) -> None:
        # fd 2 is not in this thread's table: a failure is printed on the loop
        try:
            self._watch_stalls()
        except BaseException as exc:
            self._heard.append(exc)  # (raising here would print to a closed fd 2)

    def _watch_stalls(self) -> None:
        # (expiration count it was taken under, sample, seconds since the last one)
        pending: list[tuple[int, Sample, float]] = []
        period = self._period
        assert self._deadman is not None
        deadman = self._deadman.fd
        # the loop's system calls cost less while no other thread shares the
        # fd table (see private_fd_table); this thread needs only its timer:
        # fds of the loop are looked at through /proc (_frames._fd_kind), and
        # on_stall runs on the loop
        private_fd_table(deadman)
        fd_dir = self._fd_dir
        while True:
            os.read(deadman, 8)  # without the GIL, until the loop misses a beat
            if self._state != "running":
                break
            self._wakes += 1
            expired = self._expired
            last = time.monotonic()  # woken: the GIL may take long to come (see above)
            while self._expired == expired and self._state == "running":
                frame = _program_frame(sys._current_frames().get(self._thread_id))  # pyright: ignore[reportPrivateUsage]
                if frame is not None and self._expired == expired:
                    # the snapshot keeps the GIL; complete() may give it up
                    # (stat, source files) and let the loop thread run on
                    snap = snapshot(frame, fd_dir)
                    if self._expired == expired:  # still stalled: the snapshot shows the stall
                        now = time.monotonic()
                        pending.append((expired, complete(snap), now - last))
                        last = now
                    del snap
                del frame
                slept = time.monotonic()
                self._sleep(period / 2)
                if time.monotonic() - slept >= 1.5 * period:
                    # kept from the GIL for a period: C code held it, and the
                    # loop thread handed it over at its first bytecode after,
                    # before any beat: sample that, for the beat to come
                    expired = self._expired
            self._finish(pending)
            self._check_gc()
        self._finish(pending)
        self._check_gc()

    def _check_gc(self) -> None:
        """Record the long collections no heartbeat stall took in.

        A collection of ``threshold`` or more fires the dead-man switch, but
        may delay the beat by less (when it starts just after one): then
        the ring is the only witness.
        """
        count = self._gc_count
        for k in range(max(self._gc_done, count - _GC_RING), count):
            start, end, generation = self._gc_ring[k % _GC_RING]
            if end - start >= self.threshold and start >= self._covered:
                self._covered = end
                suggestion = gc_suggestion(generation)
                self._record_stall(without_site("gc", self._loop_name, end - start, 0, suggestion))
        self._gc_done = count

    def _sleep(self, seconds: float) -> None:
        if self._sleeper.acquire(timeout=seconds):
            self._sleeper.release()  # stopped: every later sleep returns at once

    def _finish(self, pending: list[tuple[int, Sample, float]]) -> None:
        """Record the stalls whose late beat has come, with their samples."""
        while self._late:
            count, due, end = self._late.popleft()
            self._record(end - due, due, end, [(s, w) for c, s, w in pending if c == count])
        # the beat notes a late expiration before it moves _expired, so every
        # sample taken under an older count has been used or belongs to no stall
        expired = self._expired
        pending[:] = [p for p in pending if p[0] >= expired]

    def _record(
        self, duration: float, start: float, end: float, samples: list[tuple[Sample, float]]
    ) -> None:
        self._covered = max(self._covered, end)
        covered, generation = self._gc_time(start, end)
        if covered >= duration / 2:
            stall = without_site(
                "gc", self._loop_name, duration, len(samples), gc_suggestion(generation)
            )
        elif samples:
            stall = stall_from(samples, duration, self._loop_name)
        else:
            stall = without_site("unknown", self._loop_name, duration, 0, unknown_suggestion())
        self._record_stall(stall)

    def _record_stall(self, stall: Stall) -> None:
        with self._lock:
            self._stalls.append(stall)
        if self._on_stall is not None:
            self._heard.append(stall)  # for the loop: see _deliver

    def _gc_time(self, start: float, end: float) -> tuple[float, int]:
        covered, generation = 0.0, 0
        for gc_start, gc_end, gen in tuple(self._gc_ring):
            overlap = min(end, gc_end) - max(start, gc_start)
            if overlap > 0:
                covered += overlap
                generation = max(generation, gen)
        return covered, generation


_GC_CALLBACK = Monitor._gc_callback.__code__  # pyright: ignore[reportPrivateUsage]


def _program_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """The frame to sample: past the monitor's gc callback, which runs inside
    whatever call of the program allocated -- and is where C code holding
    the GIL most often hands it to the watchdog, being the only Python code
    it runs (a stall sampled there was counted as the loop's own code)."""
    if frame is not None and frame.f_code is _GC_CALLBACK and frame.f_back is not None:
        return frame.f_back
    return frame


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

    The loop only runs a tiny callback every ``threshold / 2``, when a
    kernel timer says so; a watchdog thread, asleep while those callbacks
    come on time, samples the loop thread's stack when one is late.  Stalls
    of ``1.5 * threshold`` or more are always reported.  To
    watch a whole program without changing it, run it with
    ``python -m adapt doctor -- python app.py``.
    """
    return Monitor(threshold)
