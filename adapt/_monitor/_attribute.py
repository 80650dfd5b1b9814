"""Which call a stall's samples show, and what fixes it.

The watchdog hands over a stall's samples, each weighted by the time since
the one before; the call site the loop thread was seen at longest is the
stall's site, and one of its samples -- the latest taken inside a call,
which can tell what the line calls -- gives the suggestion (``_table``).
Samples in the loop's own machinery count as "idle": the program did not
stall the loop there (the machine or another thread's GIL did).
"""

from __future__ import annotations

import collections
import linecache
import types

from ._frames import Sample, call_text
from ._report import StackEntry, Stall
from ._table import Suggestion, idle_suggestion, suggest

__all__ = ["stall_from", "without_site"]


def without_site(
    kind: str, loop: str, duration: float, samples: int, suggestion: Suggestion
) -> Stall:
    """A stall with no call site: a GC pause, the loop's own code, or none sampled."""
    name = {"gc": "<garbage collection>", "idle": "<event loop>"}.get(kind, "<not sampled>")
    return Stall(
        kind=kind,
        loop=loop,
        duration=duration,
        site=StackEntry(name, 0, "", ""),
        call="",
        stack=(),
        suggestion=suggestion,
        samples=samples,
    )


def stall_from(samples: list[tuple[Sample, float]], duration: float, loop: str) -> Stall:
    """The stall the samples show, on loop ``loop``: at the call site where
    they saw the loop thread longest, with that call's suggestion."""
    # the call site the samples show for the longest time (the latest one
    # on a tie): a sample stands for the time since the one before, so
    # the one taken when C code gave the GIL back counts for all of it
    # (None: the loop thread was in the loop's own code, see _IDLE)
    counts: dict[tuple[types.CodeType, int] | None, float] = collections.defaultdict(float)
    latest: dict[tuple[types.CodeType, int] | None, int] = {}
    # the sample a site's suggestion comes from: its latest one that was
    # taken in a call (a sample between two calls on the line -- as the
    # stall ends, say -- cannot tell what the line calls)
    chosen: dict[tuple[types.CodeType, int] | None, tuple[Sample, int]] = {}
    for n, (sample, weight) in enumerate(samples):
        index = _site_index(sample)
        frame = sample.frames[index]
        idle = sample.frames[0].module.startswith(_IDLE)
        key = None if idle else (frame.code, frame.lineno)
        counts[key] += weight
        latest[key] = n
        held = chosen.get(key)
        if held is None or _in_call(sample, index) or not _in_call(*held):
            chosen[key] = (sample, index)
    best = max(counts.values())
    key = max((k for k in counts if counts[k] == best), key=latest.__getitem__)
    sample, index = chosen[key]
    if key is None:
        return without_site("idle", loop, duration, len(samples), idle_suggestion())
    site = sample.frames[index]
    call = call_text(site.code, site.lasti)
    callee = sample.callee if index == 0 else None
    suggestion = suggest(
        call=call,
        library_modules=tuple(f.module for f in sample.frames[:index]),
        function=callee.function if callee else "",
        receiver=callee.receiver if callee else (),
        fd_kind=callee.fd_kind if callee else "",
        loop=loop,
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
        loop=loop,
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


def _in_call(sample: Sample, index: int) -> bool:
    """Whether the sample can tell what its site calls: the site frame is in
    a call whose callee is known, or library frames are above it."""
    return index > 0 or sample.callee is not None


def _site_index(sample: Sample) -> int:
    """The program's own innermost frame (or the innermost frame)."""
    return next((i for i, f in enumerate(sample.frames) if f.user), 0)


def _entry(filename: str, lineno: int, function: str) -> StackEntry:
    return StackEntry(filename, lineno, function, linecache.getline(filename, lineno).strip())
