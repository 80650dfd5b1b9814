"""Type tests: adapt.monitor() and its report."""

from __future__ import annotations

from typing import Any, assert_type

from adapt import Monitor, StackEntry, Stall, StallReport, StallSite, Suggestion, monitor


async def watched() -> None:
    async with monitor() as m:
        assert_type(m, Monitor)
    with monitor(0.1) as m2:
        assert_type(m2, Monitor)
    assert_type(m.threshold, float)
    report = m.report()
    assert_type(report, StallReport)
    assert_type(report.sites, tuple[StallSite, ...])
    assert_type(report.stalls, int)
    assert_type(report.stalled, float)
    assert_type(report.monitored, float)
    assert_type(report.format(), str)
    assert_type(report.to_json(), str)
    assert_type(report.to_dict(), dict[str, Any])
    for site in report.sites:
        assert_type(site.lineno, int)
        assert_type(site.filename, str)
        assert_type(site.call, str)
        assert_type(site.worst, float)
        assert_type(site.stack, tuple[StackEntry, ...])
        assert_type(site.suggestion, Suggestion)
        assert_type(site.suggestion.recipe, str | None)
        assert_type(site.stack[0].line, str)


def on_stall(stall: Stall) -> None:
    assert_type(stall.duration, float)
    assert_type(stall.site, StackEntry)
    assert_type(stall.to_dict(), dict[str, Any])
    assert_type(Stall.from_dict(stall.to_dict()), Stall)


def with_callback() -> Monitor:
    return Monitor(0.1, on_stall=on_stall)


def bad() -> None:
    monitor("0.1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    m = monitor()
    m.report().sites[0].lineno = 3  # type: ignore[misc]  # pyright: ignore[reportAttributeAccessIssue]
