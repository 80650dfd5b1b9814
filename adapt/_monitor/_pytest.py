"""The ``adapt_no_stalls`` pytest fixture: fail a test whose loop stalled.

::

    def test_handler(adapt_no_stalls):                  # any loop the test runs
        asyncio.run(serve_one_request())

    @pytest.mark.adapt_no_stalls(threshold=0.2)         # a looser threshold
    async def test_slow_start(adapt_no_stalls): ...

Stalls whose samples caught the loop thread in the loop's own code (kind
``"idle"``: an overloaded machine, another thread holding the GIL) do not
fail the test.  Registered as a pytest plugin (``pytest11`` entry point ``adapt``): it only
adds the fixture and the marker, and does nothing for tests that do not ask
for the fixture.  Disable it with ``-p no:adapt``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._report import Stall, StallReport

__all__ = ["StallCollector", "adapt_no_stalls"]

DEFAULT_THRESHOLD = 0.05

_collectors = pytest.StashKey["StallCollector"]()


class StallCollector:
    """The stalls of every loop a test runs (what ``adapt_no_stalls`` gives)."""

    def __init__(self, threshold: float) -> None:
        from ._hooks import LoopHooks

        self.threshold = threshold
        self.stalls: list[Stall] = []
        self.hooks = LoopHooks(threshold, self.stalls.append)

    def report(self) -> StallReport:
        """The stalls so far, grouped by call site."""
        from ._report import aggregate

        return aggregate(list(self.stalls), self.threshold, self.hooks.monitored)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "adapt_no_stalls(threshold=0.05): the stall threshold (seconds) of the "
        "adapt_no_stalls fixture",
    )


@pytest.fixture
def adapt_no_stalls(request: pytest.FixtureRequest) -> Iterator[StallCollector]:
    """Fail the test if a loop it runs stalls past the threshold (default
    50 ms; ``@pytest.mark.adapt_no_stalls(threshold=S)`` to change it)."""
    marker = request.node.get_closest_marker("adapt_no_stalls")
    threshold = DEFAULT_THRESHOLD
    if marker is not None:
        threshold = float(marker.kwargs.get("threshold", *marker.args[:1] or [threshold]))
    collector = StallCollector(threshold)
    collector.hooks.install()
    request.node.stash[_collectors] = collector
    try:
        yield collector
    finally:
        collector.hooks.uninstall()
    if _call_wrapper is None:  # no call-phase wrapper: fail in teardown instead
        _check(collector)


def _check(collector: StallCollector) -> None:
    report = collector.report()
    # a stall that caught the loop in its own code is the machine's, not the test's
    if any(site.kind != "idle" for site in report.sites):
        pytest.fail(report.format(), pytrace=False)


_call_wrapper: Callable[[Any], Any] | None
try:
    _call_wrapper = pytest.hookimpl(wrapper=True)
except TypeError:  # pluggy < 1.1: the plugin must not break such a pytest
    _call_wrapper = None
else:

    @_call_wrapper
    def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
        result = yield  # a test that failed already is not checked
        collector = item.stash.get(_collectors, None)
        if collector is not None:
            _check(collector)
        return result
