"""The pictures of a load comparison's report, drawn with matplotlib (Agg) into PNG files.

Throughput and p95 against users, CPU per 1,000 requests by role, per-endpoint p95 at the
reference load, and the isolation experiment. Each plot draws only what was measured: an
architecture without a window, a knee or a hot phase is left out, never a crash. This module
must never compute a figure `strangler.compare.analysis` does not give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from strangler.compare import analysis
from strangler.compare.results import Comparison

PLOTS = {
    "load": "Throughput and p95 against users",
    "cpu": "CPU seconds per 1,000 requests by role, at each architecture's knee",
    "endpoints": "p95 per endpoint at the reference load",
    "isolation": "Other endpoints' p95 without and with the hot search load",
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
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    for architecture in comparison.architectures:
        steps = sorted(architecture.steps, key=lambda window: window.users)
        if not steps:
            continue
        users = [window.users for window in steps]
        throughput.plot(
            users,
            [window.total.requests_per_second for window in steps],
            "o-",
            label=architecture.title,
        )
        measured = [window for window in steps if window.total.p95_ms is not None]
        latency.plot(
            [window.users for window in measured],
            [window.total.p95_ms for window in measured],
            "o-",
            label=architecture.title,
        )
        found = analysis.knee(architecture, comparison.settings)
        if found:
            throughput.plot(found.users, found.total.requests_per_second, "k*", markersize=12)
    latency.axhline(comparison.settings.p95_bound_ms, color="grey", linestyle=":", linewidth=1)
    throughput.set(xlabel="users", ylabel="requests/s", title="Throughput (* the knee)")
    latency.set(xlabel="users", ylabel="p95 (ms)", title="p95 (dotted: the bound)")
    latency.set_yscale("log")
    _legend(throughput)
    _legend(latency)
    return figure


def _cpu(plt: Any, comparison: Comparison) -> Any:
    figure, axes = plt.subplots(figsize=(11, 4.2))
    costs = {}
    for architecture in comparison.architectures:
        found = analysis.knee(architecture, comparison.settings)
        if found:
            costs[architecture.title] = analysis.cost(found).cpu_per_1000_by_role
    roles = sorted({role for by_role in costs.values() for role in by_role})
    positions = numpy.arange(len(costs))
    bottom = numpy.zeros(len(costs))
    for role in roles:
        heights = numpy.array([by_role.get(role, 0.0) for by_role in costs.values()])
        axes.bar(positions, heights, bottom=bottom, label=role)
        bottom += heights
    axes.set_xticks(positions, list(costs), rotation=15, ha="right")
    axes.set(ylabel="CPU s / 1,000 requests", title=PLOTS["cpu"])
    if roles:
        axes.legend(fontsize="small", title="role", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def _endpoints(plt: Any, comparison: Comparison) -> Any:
    figure, axes = plt.subplots(figsize=(11, 4.8))
    table = analysis.at_reference(comparison)
    names = list(table)
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    keys = [key for key in titles if any(key in row for row in table.values())]
    width = 0.8 / max(len(keys), 1)
    positions = numpy.arange(len(names))
    for index, key in enumerate(keys):
        heights = [_or_zero(table[name].get(key)) for name in names]
        axes.bar(positions + index * width, heights, width, label=titles[key])
    axes.set_xticks(positions + width * (len(keys) - 1) / 2, names, rotation=20, ha="right")
    users = comparison.settings.reference_users
    axes.set(ylabel="p95 (ms)", title=f"{PLOTS['endpoints']} ({users} users)")
    _legend(axes)
    return figure


def _isolation(plt: Any, comparison: Comparison) -> Any:
    figure, axes = plt.subplots(figsize=(11, 4.2))
    found = [
        (architecture.title, result)
        for architecture in comparison.architectures
        if (result := analysis.isolation(architecture, comparison.settings))
    ]
    positions = numpy.arange(len(found))
    before = [result.others_reference_p95_ms or 0.0 for _, result in found]
    after = [result.others_hot_p95_ms or 0.0 for _, result in found]
    axes.bar(positions - 0.2, before, 0.4, label=f"{comparison.settings.reference_users} users")
    axes.bar(
        positions + 0.2,
        after,
        0.4,
        label=f"the same + {comparison.settings.hot_users} hot searchers",
    )
    for position, (_, result) in zip(positions, found, strict=True):
        if result.ratio is not None:
            axes.annotate(
                f"x{result.ratio:.2f}",
                (position + 0.2, after[position]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
            )
    axes.margins(y=0.15)
    axes.set_xticks(positions, [title for title, _ in found], rotation=15, ha="right")
    axes.set(ylabel="p95 of the other endpoints (ms)", title=PLOTS["isolation"])
    _legend(axes)
    return figure


def _or_zero(found: Any) -> float:
    return float(found.p95_ms) if found is not None and found.p95_ms is not None else 0.0


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
