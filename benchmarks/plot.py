"""Render the saved benchmark results for the docs: charts and tables.

Reads the JSON that the ``bench_*.py`` scripts save in ``benchmarks/results/``
and writes into ``docs/_static/``:

* ``bench_<name>.png``: charts (pingpong, bulk, memory, threads, bridges);
* ``bench_<name>_table.rst``: reStructuredText tables that the docs include
  (pingpong, bulk, memory, shims, threads, bridges): the median of every case
  and every target ratio with ``OK`` or ``MISSED``.

::

    python benchmarks/plot.py            # every result present
    python benchmarks/plot.py --quick    # smoke-run results, output in results/
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Charts are drawn at the width the docs show them (WIDTH inches, about the
# 900 px content column) and saved at DPI for sharp text on dense screens, so
# a 12 pt label is about 16 px on the page at normal zoom.
WIDTH = 9.0
DPI = 200
plt.rcParams.update(
    {
        "font.size": 12,
        "axes.titlesize": 13,
        "axes.labelsize": 12,
        "xtick.labelsize": 11,
        "ytick.labelsize": 11,
        "legend.fontsize": 11,
        "figure.titlesize": 14,
    }
)
LABEL = 11  # the value printed next to each bar

HERE = Path(__file__).parent
RESULTS = HERE / "results"
STATIC = HERE.parent / "docs" / "_static"
LIMIT = "blocking socket in a thread"

ADAPT = "#d95f02"
PEER = "#7570b3"
REFERENCE = "#999999"
MISSED = "#b2182b"

#: doc page -> the result files its tables come from
GROUPS = {
    "pingpong": ["pingpong"],
    "bulk": ["bulk"],
    "memory": ["memory"],
    "shims": ["shims"],
    "threads": ["threads_calls", "threads_read", "threads_iterate", "threads_latency"],
    "bridges": ["bridges_channel", "bridges_oneshot", "bridges_portal"],
    "readline": ["readline"],
    "recipes": ["inotify_live", "inotify_drain", "tls", "tls_cpu", "subprocess", "pty"],
}
#: panels of the threads chart: (result file, case-name suffix, panel title)
THREAD_PANELS = [
    ("threads_calls", " seq", "sequential calls"),
    ("threads_calls", " x100", "100 concurrent callers"),
    ("threads_read", "", "file read"),
    ("threads_iterate", "", "iterate"),
]

Data = dict[str, Any]


# -- tables ----------------------------------------------------------------


def _esc(text: str) -> str:
    """Text as reStructuredText shows it verbatim (no emphasis, no links)."""
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _check(value: float, op: str, limit: float) -> list[str]:
    """Measured, target and verdict: a minimum ratio (``>=``) or a maximum (``<=``)."""
    if op == ">=":
        return [_ratio(value), f">= {limit}x", "OK" if value >= limit else "**MISSED**"]
    return [_num(value), f"<= {limit:,}", "OK" if value <= limit else "**MISSED**"]


def _list_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {_esc(title)}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return [*lines, ""]


def _medians_tables(stem: str, data: Data) -> list[str]:
    """The medians, best first; one table per panel of cases (``THREAD_PANELS``)."""
    parts = [(suffix, name) for st, suffix, name in THREAD_PANELS if st == stem and suffix]
    lines = []
    for suffix, name in parts or [("", "")]:
        medians = {k: v for k, v in data["medians"].items() if k.endswith(suffix)}
        rows = [[_esc(k), _num(v)] for k, v in sorted(medians.items(), key=lambda kv: -kv[1])]
        title = f"{data['title']} -- {name}" if name else data["title"]
        lines += _list_table(title, ["case", f"{_esc(data['unit'])} (median)"], rows)
    return lines


def _targets_table(targets: list[Data]) -> list[str]:
    rows = [
        [f"{_esc(t['case'])} / {_esc(t['baseline'])}", *_check(t["ratio"], ">=", t["minimum"])]
        for t in targets
    ]
    return _list_table("targets", ["ratio", "measured", "target", "verdict"], rows)


def _memory_tables(data: Data) -> list[str]:
    python: dict[str, float] = data["python"]
    rss: dict[str, float] = data["rss"]
    rows = [[_esc(k), _num(v), _num(rss[k])] for k, v in python.items()]
    header = ["case", "Python memory (tracemalloc)", "RSS growth"]
    lines = _list_table(f"{data['title']}, {data['unit']}", header, rows)
    rows = [
        [_esc(t["case"]), _esc(t["what"]), *_check(t["value"], "<=", t["maximum"])]
        for t in data["targets"]
    ]
    header = ["case", "figure", "bytes per socket", "target", "verdict"]
    return lines + _list_table("targets", header, rows)


def _latency_table(data: Data) -> list[str]:
    latency: dict[str, dict[str, float]] = data["latency_us"]
    rows = [
        [_esc(k), f"{v['p50_us']:.0f}", f"{v['p99_us']:.0f}"]
        for k, v in sorted(latency.items(), key=lambda kv: kv[1]["p50_us"])
    ]
    title = f"latency of single calls ({data['calls']:,} sequential calls)"
    return _list_table(title, ["case", "p50 (µs)", "p99 (µs)"], rows)


def write_table(sources: dict[str, Data], out: Path) -> None:
    """One page's tables: medians of each result file, then all its targets."""
    names = ", ".join(f"``{stem}.json``" for stem in sources)
    loads = [d["loadavg"] for d in sources.values() if "loadavg" in d]
    load = f"; load average {loads[0][0]:.2f} before, {loads[-1][1]:.2f} after" if loads else ""
    lines = [f"From ``benchmarks/results/``: {names}{load}.", ""]
    targets: list[Data] = []
    for stem, data in sources.items():
        if "python" in data:
            lines += _memory_tables(data)
        elif "latency_us" in data:
            lines += _latency_table(data)
        else:
            lines += _medians_tables(stem, data)
            targets += data["targets"]
    if targets:
        lines += _targets_table(targets)
    out.write_text("\n".join(lines))


# -- charts ----------------------------------------------------------------


def _relative(ax: Axes, medians: dict[str, float], base: str, xlabel: str) -> None:
    """Every case as a multiple of ``base``; log scale when they spread widely."""
    names = sorted(medians, key=lambda k: medians[k])
    values = [medians[k] / medians[base] for k in names]
    colours = [ADAPT if k.startswith("adapt") else REFERENCE if k == base else PEER for k in names]
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {_ratio(v)}", va="center", fontsize=LABEL)
    ax.axvline(1.0, color=REFERENCE, linewidth=0.8, linestyle=":")
    if max(values) / min(values) > 30:
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 1.5, max(values) * 6)
    else:
        ax.set_xlim(0, max(values) * 1.22)
    ax.set_xlabel(xlabel)


def _targets(ax: Axes, data: Data) -> None:
    """The target ratios: measured bar, target tick."""
    targets = data["targets"]
    labels = [f"{t['case']}\nvs {t['baseline']}" for t in targets]
    ratios = [t["ratio"] for t in targets]
    colours = [ADAPT if t["ratio"] >= t["minimum"] else MISSED for t in targets]
    ys = range(len(targets))
    ax.barh(labels, ratios, color=colours)
    ax.scatter([t["minimum"] for t in targets], ys, marker="|", s=300, color="black", zorder=3)
    for y, t in zip(ys, targets, strict=True):
        ax.text(
            t["ratio"], y, f" {t['ratio']:.2f}x (>= {t['minimum']})", va="center", fontsize=LABEL
        )
    ax.invert_yaxis()
    ax.set_xlim(0, max(ratios + [t["minimum"] for t in targets]) * 1.45)
    ax.set_xlabel("ratio (bar: measured, black tick: target)")


def _save(fig: Figure, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def plot_rates(data: Data, what: str, out: Path) -> None:
    cases, targets = len(data["medians"]), len(data["targets"])
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(WIDTH, 0.42 * cases + 0.7 * targets + 3),
        height_ratios=(0.42 * cases + 1, 0.7 * targets + 1),
    )
    _relative(top, data["medians"], LIMIT, f"{what}, relative to a {LIMIT}")
    _targets(bottom, data)
    fig.suptitle(data["title"])
    _save(fig, out)


def _baseline(data: Data, names: list[str]) -> str:
    """The first target baseline among ``names``, else the first peer."""
    for t in data["targets"]:
        if t["baseline"] in names:
            return str(t["baseline"])
    return next(k for k in names if not k.startswith("adapt"))


def plot_panels(panels: list[tuple[Data, str, str]], title: str, out: Path) -> None:
    """One panel per ``(result, case-name suffix, panel title)``, vs its baseline."""
    heights = [
        len([k for k in data["medians"] if k.endswith(suffix)]) for data, suffix, _ in panels
    ]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(WIDTH, sum(0.42 * h + 1.3 for h in heights) + 0.6),
        height_ratios=[0.42 * h + 1.3 for h in heights],
        squeeze=False,
    )
    for ax, (data, suffix, name) in zip(axes.flat, panels, strict=True):
        medians = {
            k.removesuffix(suffix): v for k, v in data["medians"].items() if k.endswith(suffix)
        }
        base = _baseline(data, [k + suffix for k in medians]).removesuffix(suffix)
        _relative(ax, medians, base, f"{data['unit']}, relative to {base}")
        ax.set_title(name)
    fig.suptitle(title)
    _save(fig, out)


def plot_memory(data: Data, out: Path) -> None:
    python: dict[str, float] = data["python"]
    loops = ["asyncio", "uvloop", "trio"]
    native = {"asyncio": "asyncio sock_recv", "uvloop": "uvloop sock_recv"}
    bare = [python[f"{lp} bare task"] for lp in loops]
    adapt = [python[f"adapt {lp}"] for lp in loops]
    share = [a - b for a, b in zip(adapt, bare, strict=True)]
    own = [python[native.get(lp, "trio wait_readable")] for lp in loops]
    series = [
        ("adapt: Async(sock).recv(1), task included", adapt, ADAPT),
        ("adapt's share (the above minus a bare task)", share, "#fdb863"),
        ("the loop's own wait, task included", own, PEER),
        ("bare task, no socket", bare, REFERENCE),
    ]
    fig, ax = plt.subplots(figsize=(WIDTH, 5.5))
    width = 0.2
    for i, (label, values, colour) in enumerate(series):
        xs = [x + (i - 1.5) * width for x in range(len(loops))]
        ax.bar(xs, values, width, label=label, color=colour)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=10)
    maximum = data["targets"][0]["maximum"]
    ax.axhline(maximum, color="black", linewidth=0.8, linestyle="--", label=f"target: {maximum} B")
    ax.set_xticks(range(len(loops)), loops)
    ax.set_ylabel("bytes of Python memory per socket (tracemalloc)")
    ax.set_title(data["title"])
    ax.legend()
    _save(fig, out)


def plot_page(name: str, sources: dict[str, Data], out: Path) -> bool:
    """The chart of one page, if it has one and its results are all there."""
    if name in ("pingpong", "bulk"):
        plot_rates(sources[name], "round trips/s" if name == "pingpong" else "MiB/s", out)
    elif name == "memory":
        plot_memory(sources[name], out)
    elif name == "threads" and all(stem in sources for stem, _, _ in THREAD_PANELS):
        panels = [(sources[stem], suffix, title) for stem, suffix, title in THREAD_PANELS]
        plot_panels(panels, "work in threads: adapt and its peers", out)
    elif name == "bridges" and len(sources) == len(GROUPS["bridges"]):
        panels = [(data, "", data["title"]) for data in sources.values()]
        plot_panels(panels, "callback bridges: adapt and its peers", out)
    else:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="use the smoke-run results")
    args = parser.parse_args()
    suffix = "_quick" if args.quick else ""
    # smoke-run output stays out of the docs
    dest = RESULTS if args.quick else STATIC
    dest.mkdir(parents=True, exist_ok=True)
    for name, stems in GROUPS.items():
        sources: dict[str, Data] = {}
        for stem in stems:
            src = RESULTS / f"{stem}{suffix}.json"
            if src.exists():
                sources[stem] = json.loads(src.read_text())
            else:
                print(f"no {src.relative_to(HERE.parent)}: run benchmarks/bench_{name}.py")
        if not sources:
            continue
        table = dest / f"bench_{name}{suffix}_table.rst"
        write_table(sources, table)
        chart = dest / f"bench_{name}{suffix}.png"
        for out in [table, chart] if plot_page(name, sources, chart) else [table]:
            print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
