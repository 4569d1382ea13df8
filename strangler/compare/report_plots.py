"""The pictures of a load comparison's report, drawn with matplotlib (Agg) into PNG files.

The limit search (throughput and p95 of every step), CPU by role (per 1,000 requests at the
limit and at the reference rate, and the cores kept busy with no traffic, each its own panel),
per-endpoint p95 at the reference load, and the isolation experiment. Every architecture has
one colour in every plot; every bar and point says how many requests it is made of, and a p95
of fewer than `analysis.MIN_SAMPLES` requests is greyed with that reason. Each plot draws only
what was measured: an architecture without a window, a limit or a hot phase is left out, never
a crash. This module must never compute a figure `strangler.compare.analysis` does not give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from strangler.compare import analysis
from strangler.compare.results import AGGREGATED, Comparison

PLOTS = {
    "load": "The limit search: throughput and p95 of every step (no think time)",
    "cpu": "CPU by role: at the limit, at the reference rate, and with no traffic",
    "endpoints": "p95 per endpoint at the reference load",
    "isolation": "Other endpoints' p95 without and with the hot load",
}
FEW = "#c8c8c8"  # the colour of a figure made of too few requests to judge
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")  # fmt: skip
ROLE_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                "#8c8c8c", "#ccb974", "#64b5cd")  # fmt: skip


def colours(comparison: Comparison) -> dict[str, str]:
    """Architecture key -> its colour, the same in every plot (in the order measured)."""
    return {
        architecture.key: PALETTE[index % len(PALETTE)]
        for index, architecture in enumerate(comparison.architectures)
    }


def draw_all(comparison: Comparison, folder: Path) -> dict[str, Path]:
    """Write every plot into `folder` (created if missing); plot key -> PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    drawers = {
        "load": _load,
        "cpu": _cpu,
        "endpoints": _endpoints,
        "isolation": _isolation,
    }
    written = {}
    for key, drawer in drawers.items():
        figure = drawer(plt, comparison)
        path = folder / f"{key}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written[key] = path
    return written


def _load(plt: Any, comparison: Comparison) -> Any:
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.8))
    palette = colours(comparison)
    settings = comparison.settings
    for architecture in comparison.architectures:
        steps = architecture.search
        if not steps:
            continue
        colour = palette[architecture.key]
        users = [window.users for window in steps]
        rates = [window.total.requests_per_second for window in steps]
        throughput.plot(users, rates, "o-", color=colour, label=architecture.title)
        for window in steps:
            throughput.annotate(
                f"n={window.total.requests:,}", (window.users, window.total.requests_per_second),
                xytext=(3, -10), textcoords="offset points", fontsize=6, color=colour,
            )  # fmt: skip
        measured = [window for window in steps if window.total.p95_ms is not None]
        latency.plot(
            [window.users for window in measured],
            [window.total.p95_ms for window in measured],
            "o-",
            color=colour,
            label=architecture.title,
        )
        found = analysis.limit(architecture, settings)
        if found and found.window:
            marker = "*" if found.is_reached else "^"
            throughput.plot(
                found.window.users, found.window.total.requests_per_second, marker,
                color=colour, markersize=15, markeredgecolor="black",
            )  # fmt: skip
        if found and found.broken:
            throughput.plot(
                found.broken.users, found.broken.total.requests_per_second, "X",
                color=colour, markersize=10, markeredgecolor="black",
            )  # fmt: skip
    latency.axhline(settings.p95_bound_ms, color="grey", linestyle=":", linewidth=1)
    throughput.set(
        xlabel="users, no think time (each point a step of the search)",
        ylabel="requests/s",
        title="Throughput (* the limit, ^ limit not reached, X broke a bound)",
    )
    latency.set(xlabel="users", ylabel="p95 (ms)", title="p95 (dotted: the bound)")
    ticks = sorted({window.users for found in comparison.architectures for window in found.search})
    for axes in (throughput, latency):
        axes.set_xscale("log", base=2)
        if ticks:
            axes.set_xticks(ticks, [str(users) for users in ticks], fontsize=7)
            axes.minorticks_off()
    latency.set_yscale("log")
    _legend(throughput)
    return figure


def role_colours(comparison: Comparison) -> dict[str, str]:
    roles = sorted(
        {
            role
            for architecture in comparison.architectures
            for window in architecture.windows
            for role in window.resources.cpu_seconds_by_role
        }
    )
    return {role: ROLE_PALETTE[index % len(ROLE_PALETTE)] for index, role in enumerate(roles)}


@dataclass(frozen=True)
class CpuPanel:
    """One panel of CPU by role: a stack of roles per architecture measured there."""

    title: str
    unit: str  # "per_1000" (CPU s / 1,000 requests) or "cores"
    keys: list[str]  # the architectures with the panel's window, in the order measured
    stacks: list[dict[str, float]]  # each one's CPU by role
    requests: list[int]  # the requests of each one's window


def cpu_panels(comparison: Comparison) -> list[CpuPanel]:
    """CPU by role at the limit, at the reference rate, and with no traffic (the PNG's three
    panels and the page's three charts)."""
    settings = comparison.settings
    sources = [
        ("CPU s / 1,000 requests at the limit",
         lambda found: analysis.limit_window(found, settings), "per_1000"),
        (f"CPU s / 1,000 requests at {settings.reference_rate:g} req/s (reference)",
         lambda found: analysis.reference(found, settings), "per_1000"),
        ("cores busy with no traffic (background)", lambda found: found.idle, "cores"),
    ]  # fmt: skip
    panels = []
    for title, pick, unit in sources:
        panel = CpuPanel(title, unit, [], [], [])
        for architecture in comparison.architectures:
            window = pick(architecture)
            if window is None:
                continue
            cost = analysis.cost(window)
            values = cost.cpu_per_1000_by_role if unit == "per_1000" else cost.cores_by_role
            if values:
                panel.keys.append(architecture.key)
                panel.stacks.append(values)
                panel.requests.append(window.total.requests)
        panels.append(panel)
    return panels


def _cpu(plt: Any, comparison: Comparison) -> Any:
    figure, panels = plt.subplots(1, 3, figsize=(14, 4.8))
    role_colour = role_colours(comparison)
    palette = colours(comparison)
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    labelled: set[str] = set()
    for axes, panel in zip(panels, cpu_panels(comparison), strict=True):
        title, unit, keys, stacks, counts = (
            panel.title, panel.unit, panel.keys, panel.stacks, panel.requests
        )  # fmt: skip
        names = [titles[key] for key in keys]
        positions = numpy.arange(len(names))
        bottom = numpy.zeros(len(names))
        for role, colour in role_colour.items():
            heights = numpy.array([stack.get(role, 0.0) for stack in stacks])
            if not heights.any():
                continue
            label = role if role not in labelled else None
            labelled.add(role)
            axes.bar(positions, heights, bottom=bottom, color=colour, label=label)
            bottom += heights
        for position, total, count in zip(positions, bottom, counts, strict=True):
            text = f"{total:.2f}" + (f"\nn={count:,}" if unit == "per_1000" else "")
            axes.annotate(
                text, (position, total), xytext=(0, 2), textcoords="offset points",
                ha="center", va="bottom", fontsize=7,
            )  # fmt: skip
        axes.set_xticks(positions, names, rotation=25, ha="right", fontsize=7)
        for tick, key in zip(axes.get_xticklabels(), keys, strict=True):
            tick.set_color(palette[key])
        if len(bottom) and bottom.max() > 0:
            axes.set_ylim(0, bottom.max() * 1.3)  # room for the labels above the bars
        axes.set_title(title, fontsize=9)
    panels[0].set_ylabel("CPU seconds")
    panels[2].set_ylabel("cores")
    handles = [handle for axes in panels for handle in axes.get_legend_handles_labels()[0]]
    if handles:
        panels[2].legend(
            handles=handles, fontsize="small", title="role", loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )  # fmt: skip
    return figure


def _endpoints(plt: Any, comparison: Comparison) -> Any:
    figure, axes = plt.subplots(figsize=(12, 5.2))
    table = analysis.at_reference(comparison)
    names = list(table)
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    palette = colours(comparison)
    keys = [key for key in titles if any(key in row for row in table.values())]
    width = 0.8 / max(len(keys), 1)
    positions = numpy.arange(len(names))
    few = False
    for index, key in enumerate(keys):
        found = [table[name].get(key) for name in names]
        heights = [_or_zero(entry) for entry in found]
        counts = [entry.requests if entry is not None else 0 for entry in found]
        shades = [palette[key] if count >= analysis.MIN_SAMPLES else FEW for count in counts]
        few = few or any(0 < count < analysis.MIN_SAMPLES for count in counts)
        bars = axes.bar(
            positions + index * width, heights, width, color=shades, label=titles[key],
            edgecolor=palette[key], linewidth=0.8,
        )  # fmt: skip
        for bar, count in zip(bars, counts, strict=True):
            if count:
                axes.annotate(
                    f"{count}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 1), textcoords="offset points", ha="center", va="bottom",
                    fontsize=5, rotation=90,
                )  # fmt: skip
    axes.set_xticks(positions + width * (len(keys) - 1) / 2, names, rotation=20, ha="right")
    rate = comparison.settings.reference_rate
    note = (
        f"; grey: fewer than {analysis.MIN_SAMPLES} requests, a p95 too thin to judge"
        if few
        else ""
    )
    axes.set(
        ylabel="p95 (ms)",
        title=f"{PLOTS['endpoints']} ({rate:g} req/s; numbers: requests{note})",
    )
    axes.title.set_fontsize(9)
    axes.margins(y=0.15)
    if keys:  # the legend's patches in each architecture's colour, never the grey of a few
        from matplotlib.patches import Patch

        axes.legend(
            handles=[Patch(color=palette[key], label=titles[key]) for key in keys]
            + ([Patch(color=FEW, label=f"< {analysis.MIN_SAMPLES} requests")] if few else []),
            fontsize="small",
        )
    return figure


def _isolation(plt: Any, comparison: Comparison) -> Any:
    figure, axes = plt.subplots(figsize=(12, 4.6))
    palette = colours(comparison)
    found = [
        (architecture, result)
        for architecture in comparison.architectures
        if (result := analysis.isolation(architecture, comparison.settings))
    ]
    positions = numpy.arange(len(found))
    before = [result.others_reference_p95_ms or 0.0 for _, result in found]
    after = [result.others_hot_p95_ms or 0.0 for _, result in found]
    shades = [palette[architecture.key] for architecture, _ in found]
    axes.bar(positions - 0.2, before, 0.4, color=shades, alpha=0.45,
             label=f"{comparison.settings.reference_rate:g} req/s (light)")  # fmt: skip
    axes.bar(
        positions + 0.2, after, 0.4, color=shades,
        label=f"the same + {comparison.settings.hot_users} {comparison.settings.hot_name} (solid)",
    )  # fmt: skip
    for position, (architecture, result) in zip(positions, found, strict=True):
        counts = others_counts(architecture, comparison)
        axes.annotate(
            f"n={counts[0]:,}", (position - 0.2, before[position]), xytext=(0, 3),
            textcoords="offset points", ha="center", va="bottom", fontsize=7,
        )  # fmt: skip
        ratio = f"x{result.ratio:.2f}\n" if result.ratio is not None else ""
        axes.annotate(
            f"{ratio}n={counts[1]:,}", (position + 0.2, after[position]), xytext=(0, 3),
            textcoords="offset points", ha="center", va="bottom", fontsize=7,
        )  # fmt: skip
    axes.margins(y=0.25)
    axes.set_xticks(
        positions, [architecture.title for architecture, _ in found], rotation=15, ha="right"
    )
    axes.set(ylabel="p95 of the other endpoints (ms)", title=PLOTS["isolation"])
    _legend(axes)
    return figure


def others_counts(architecture: Any, comparison: Comparison) -> tuple[int, int]:
    """Requests to the endpoints other than the hot one, without and with the hot load."""
    hot_endpoint = comparison.settings.hot_endpoint
    counts = []
    for window in (analysis.reference(architecture, comparison.settings), architecture.hot):
        names = (AGGREGATED, hot_endpoint)
        counts.append(
            sum(e.requests for e in window.endpoints if e.name not in names) if window else 0
        )
    return counts[0], counts[1]


def _or_zero(found: Any) -> float:
    return float(found.p95_ms) if found is not None and found.p95_ms is not None else 0.0


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
