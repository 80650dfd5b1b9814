"""Render the saved benchmark results as PNG charts for the docs.

Reads ``benchmarks/results/{pingpong,bulk,memory}.json`` (written by the
``bench_*.py`` scripts) and writes ``docs/_static/bench_*.png``::

    python benchmarks/plot.py            # every result present
    python benchmarks/plot.py --quick    # smoke-run results, charts in results/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

HERE = Path(__file__).parent
RESULTS = HERE / "results"
STATIC = HERE.parent / "docs" / "_static"
LIMIT = "blocking socket in a thread"

ADAPT = "#d95f02"
PEER = "#7570b3"
REFERENCE = "#999999"


def _colour(name: str) -> str:
    if name.startswith("adapt"):
        return ADAPT
    return REFERENCE if name == LIMIT else PEER


def _relative(ax: Axes, data: dict[str, Any], what: str) -> None:
    """Every case as a fraction of the practical limit (a blocking thread)."""
    medians: dict[str, float] = data["medians"]
    names = sorted(medians, key=lambda k: medians[k])
    base = medians[LIMIT]
    values = [medians[k] / base for k in names]
    ax.barh(names, values, color=[_colour(k) for k in names])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color=REFERENCE, linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"{what}, relative to a blocking socket in a thread")
    ax.set_xlim(0, max(values) * 1.18)
    ax.tick_params(axis="y", labelsize=8)


def _targets(ax: Axes, data: dict[str, Any]) -> None:
    """The target ratios: measured bar, target tick."""
    targets = data["targets"]
    labels = [f"{t['case']}\nvs {t['baseline']}" for t in targets]
    ratios = [t["ratio"] for t in targets]
    colours = [ADAPT if t["ratio"] >= t["minimum"] else "#b2182b" for t in targets]
    ys = range(len(targets))
    ax.barh(labels, ratios, color=colours)
    ax.scatter([t["minimum"] for t in targets], ys, marker="|", s=300, color="black", zorder=3)
    for y, t in zip(ys, targets, strict=True):
        ax.text(t["ratio"], y, f" {t['ratio']:.2f}x (>= {t['minimum']})", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(ratios + [t["minimum"] for t in targets]) * 1.45)
    ax.set_xlabel("ratio (bar: measured, black tick: target)")
    ax.tick_params(axis="y", labelsize=8)


def plot_rates(data: dict[str, Any], what: str, out: Path) -> None:
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 0.42 * len(data["medians"]) + 1.6), width_ratios=(1, 1)
    )
    _relative(left, data, what)
    _targets(right, data)
    fig.suptitle(data["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_memory(data: dict[str, Any], out: Path) -> None:
    python: dict[str, float] = data["python"]
    loops = ["asyncio", "uvloop", "trio"]
    native = {
        "asyncio": "asyncio sock_recv",
        "uvloop": "uvloop sock_recv",
        "trio": "trio wait_readable",
    }
    bare = [python[f"{lp} bare task"] for lp in loops]
    series = [
        (
            "adapt: Async(sock).recv(1), task included",
            [python[f"adapt {lp}"] for lp in loops],
            ADAPT,
        ),
        (
            "adapt's share (the above minus a bare task)",
            [python[f"adapt {lp}"] - b for lp, b in zip(loops, bare, strict=True)],
            "#fdb863",
        ),
        ("the loop's own wait, task included", [python[native[lp]] for lp in loops], PEER),
        ("bare task, no socket", bare, REFERENCE),
    ]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.2
    for i, (label, values, colour) in enumerate(series):
        xs = [x + (i - 1.5) * width for x in range(len(loops))]
        ax.bar(xs, values, width, label=label, color=colour)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    maximum = data["targets"][0]["maximum"]
    ax.axhline(maximum, color="black", linewidth=0.8, linestyle="--", label=f"target: {maximum} B")
    ax.set_xticks(range(len(loops)), loops)
    ax.set_ylabel("bytes of Python memory per socket (tracemalloc)")
    ax.set_title(data["title"], fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="plot the smoke-run results")
    args = parser.parse_args()
    suffix = "_quick" if args.quick else ""
    STATIC.mkdir(parents=True, exist_ok=True)
    done = []
    for name, what in (("pingpong", "round trips/s"), ("bulk", "MiB/s"), ("memory", "")):
        src = RESULTS / f"{name}{suffix}.json"
        if not src.exists():
            print(f"no {src.relative_to(HERE.parent)}: run benchmarks/bench_{name}.py first")
            continue
        data = json.loads(src.read_text())
        # smoke-run charts stay out of the docs
        out = (RESULTS if args.quick else STATIC) / f"bench_{name}{suffix}.png"
        if name == "memory":
            plot_memory(data, out)
        else:
            plot_rates(data, what, out)
        done.append(out)
    for out in done:
        print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
