"""Stalls, and the report that groups them by call site.

A :class:`Stall` is one event, made by the watchdog when a stall ends; it
is plain data (``to_dict``/``from_dict``), so ``python -m adapt doctor``
can receive the stalls of a child process as JSON lines, one per stall, as
they happen, and build the same :class:`StallReport` the in-process
monitor builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._table import Suggestion

__all__ = ["StackEntry", "Stall", "StallReport", "StallSite", "aggregate"]


@dataclass(frozen=True, slots=True)
class StackEntry:
    """One frame of a stalled stack: ``filename:lineno in function``, and the line."""

    filename: str
    lineno: int
    function: str
    line: str

    def __str__(self) -> str:
        return f'File "{self.filename}", line {self.lineno}, in {self.function}'


@dataclass(frozen=True, slots=True)
class Stall:
    """One stall of the loop: where, how long, and what to do about it.

    What a :class:`~adapt.Monitor` made with ``on_stall=`` hands its callback
    (in the watchdog thread) as each stall ends; :class:`StallReport` groups
    them by call site.  ``to_dict()`` / ``from_dict()`` convert to and from
    JSON-ready data.
    """

    #: "call" (sampled in the program's code), "gc", "idle" (sampled in the
    #: loop's own code) or "unknown" (no sample)
    kind: str
    loop: str
    duration: float
    #: the call site: the program's own frame (or the innermost one)
    site: StackEntry
    #: the call made at the site's line, e.g. ``"time.sleep"``
    call: str
    #: outermost first, as in a traceback
    stack: tuple[StackEntry, ...]
    suggestion: Suggestion
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """The stall as JSON-ready data."""
        return {
            "kind": self.kind,
            "loop": self.loop,
            "duration": self.duration,
            "site": _entry_dict(self.site),
            "call": self.call,
            "stack": [_entry_dict(e) for e in self.stack],
            "suggestion": _suggestion_dict(self.suggestion),
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stall:
        """The stall :meth:`to_dict` made."""
        s = data["suggestion"]
        return cls(
            kind=str(data["kind"]),
            loop=str(data["loop"]),
            duration=float(data["duration"]),
            site=StackEntry(**data["site"]),
            call=str(data["call"]),
            stack=tuple(StackEntry(**e) for e in data["stack"]),
            suggestion=Suggestion(str(s["tool"]), str(s["text"]), s.get("recipe")),
            samples=int(data["samples"]),
        )


def _entry_dict(e: StackEntry) -> dict[str, Any]:
    return {"filename": e.filename, "lineno": e.lineno, "function": e.function, "line": e.line}


def _suggestion_dict(s: Suggestion) -> dict[str, Any]:
    return {"tool": s.tool, "text": s.text, "recipe": s.recipe}


@dataclass(frozen=True, slots=True)
class StallSite:
    """One place where the loop stalled, with every stall there.

    ``filename``/``lineno``/``function``/``line`` name the program's own line
    (the frame that called into the blocking code), ``call`` the call made
    there (``"time.sleep"``); ``kind`` is ``"call"``, ``"gc"`` (garbage
    collection paused the loop), ``"idle"`` (the samples caught the loop
    thread in the loop's own code: the machine or another thread's GIL
    held it up, not the program) or ``"unknown"`` (no sample caught it).
    ``count``, ``total`` and ``worst`` are in seconds; ``stack`` is the stack
    of the worst stall, outermost first.
    """

    kind: str
    filename: str
    lineno: int
    function: str
    line: str
    call: str
    count: int
    total: float
    worst: float
    stack: tuple[StackEntry, ...]
    suggestion: Suggestion
    loops: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The site as JSON-ready data."""
        return {
            "kind": self.kind,
            "filename": self.filename,
            "lineno": self.lineno,
            "function": self.function,
            "line": self.line,
            "call": self.call,
            "count": self.count,
            "total": self.total,
            "worst": self.worst,
            "stack": [_entry_dict(e) for e in self.stack],
            "suggestion": _suggestion_dict(self.suggestion),
            "loops": list(self.loops),
        }


@dataclass(frozen=True, slots=True)
class StallReport:
    """What :func:`adapt.monitor` or ``python -m adapt doctor`` found.

    ``sites`` are ordered by total stalled time, largest first; an empty
    report means the loop never stalled past ``threshold`` seconds.
    ``monitored`` is how long the loop was watched, in seconds.
    """

    threshold: float
    monitored: float
    sites: tuple[StallSite, ...]

    @property
    def stalls(self) -> int:
        """How many stalls, at every site."""
        return sum(site.count for site in self.sites)

    @property
    def stalled(self) -> float:
        """Total stalled time, in seconds."""
        return sum(site.total for site in self.sites)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``doctor --json`` prints)."""
        return {
            "threshold": self.threshold,
            "monitored": self.monitored,
            "stalls": self.stalls,
            "stalled": self.stalled,
            "sites": [site.to_dict() for site in self.sites],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    def format(self) -> str:
        """The report as text for people, one block per call site."""
        ms = self.threshold * 1000
        if not self.sites:
            return f"adapt doctor: no stall over {ms:g} ms in {self.monitored:.1f} s."
        out = [
            f"adapt doctor: the loop stalled {self.stalls} time(s) over {ms:g} ms, "
            f"{self.stalled:.3f} s in all, at {len(self.sites)} place(s) "
            f"(in {self.monitored:.1f} s):",
        ]
        for n, site in enumerate(self.sites, 1):
            where = {
                "gc": "garbage collection",
                "idle": "the event loop's own code",
                "unknown": "not sampled",
            }.get(site.kind, f"{site.filename}:{site.lineno} in {site.function}")
            out.append("")
            out.append(
                f"{n}. {where}: {site.count} stall(s), {site.total * 1000:.0f} ms in all, "
                f"worst {site.worst * 1000:.0f} ms [{', '.join(site.loops)}]"
            )
            if site.line:
                out.append(f"       {site.line}")
            if site.stack:
                out.append("   stack (worst stall):")
                for entry in site.stack:
                    out.append(f"     {entry}")
                    if entry.line:
                        out.append(f"       {entry.line}")
            out.append(f"   fix: {site.suggestion.text}")
        return "\n".join(out)


def aggregate(stalls: Iterable[Stall], threshold: float, monitored: float) -> StallReport:
    """Group stalls by call site (kind, file and line)."""
    groups: dict[tuple[str, str, int], list[Stall]] = {}
    for stall in stalls:
        key = (stall.kind, stall.site.filename, stall.site.lineno)
        groups.setdefault(key, []).append(stall)
    sites: list[StallSite] = []
    for group in groups.values():
        worst = max(group, key=lambda s: s.duration)
        loops = tuple(sorted({s.loop for s in group}))
        sites.append(
            StallSite(
                kind=worst.kind,
                filename=worst.site.filename,
                lineno=worst.site.lineno,
                function=worst.site.function,
                line=worst.site.line,
                call=worst.call,
                count=len(group),
                total=sum(s.duration for s in group),
                worst=worst.duration,
                stack=worst.stack,
                suggestion=worst.suggestion,
                loops=loops,
            )
        )
    sites.sort(key=lambda site: -site.total)
    return StallReport(threshold, monitored, tuple(sites))
