"""The loop-stall monitor behind ``adapt.monitor()`` and ``python -m adapt doctor``.

``_core``: the monitor (heartbeat and watchdog); ``_timerfd``: the kernel
timers they run on; ``_frames``: reading the
stalled stack; ``_table``: which tool fixes which call (data);
``_report``: stalls grouped by call site; ``_hooks``: a monitor on every loop
a program starts; ``_cli``: the ``doctor`` command; ``_pytest``: the
``adapt_no_stalls`` fixture.
"""

from __future__ import annotations

from ._core import Monitor as Monitor
from ._core import monitor as monitor
from ._report import StackEntry as StackEntry
from ._report import Stall as Stall
from ._report import StallReport as StallReport
from ._report import StallSite as StallSite
from ._table import Suggestion as Suggestion

__all__ = ["Monitor", "StackEntry", "Stall", "StallReport", "StallSite", "Suggestion", "monitor"]
