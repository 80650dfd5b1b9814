"""Interleaved side-by-side benchmarking: ratios, not absolute times.

The machine is shared and noisy, so every case of a benchmark runs in the
same process, interleaved round by round (A B C A B C ...), and each case
reports the median of its rounds.  Results are printed as ratios against a
named baseline and saved as JSON under ``benchmarks/results/`` for
``benchmarks/plot.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

#: a case returns a rate (higher is better): operations/s, MiB/s...
Case = Callable[[], float]


def interleave(cases: dict[str, Case], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Run every case ``warmup + rounds`` times, interleaved; median rates."""
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(warmup + rounds):
        for name, case in cases.items():
            rate = case()
            if r >= warmup:
                rates[name].append(rate)
            print(f"  round {r} {name:<40} {rate:14.1f}", file=sys.stderr, flush=True)
    return {name: statistics.median(v) for name, v in rates.items()}


def report(
    title: str,
    unit: str,
    medians: dict[str, float],
    targets: list[tuple[str, str, float]],
    save_as: str,
) -> bool:
    """Print medians and the target ratios ``(case, baseline, minimum)``.

    Returns True when every target is met.  Saves the JSON for plots.
    """
    print(f"\n== {title} ({unit}, median, higher is better)")
    for name, value in sorted(medians.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44} {value:14.1f}")
    ok = True
    lines = []
    for case, baseline, minimum in targets:
        ratio = medians[case] / medians[baseline]
        met = ratio >= minimum
        ok &= met
        line = f"  {case} / {baseline} = {ratio:.2f}x (target >= {minimum}x) {'OK' if met else 'MISSED'}"
        lines.append(line)
        print(line)
    RESULTS.mkdir(exist_ok=True)
    data = {
        "title": title,
        "unit": unit,
        "medians": medians,
        "targets": [
            {"case": c, "baseline": b, "minimum": m, "ratio": medians[c] / medians[b]}
            for c, b, m in targets
        ],
        "cpu_count": os.cpu_count(),
    }
    (RESULTS / f"{save_as}.json").write_text(json.dumps(data, indent=2) + "\n")
    return ok
