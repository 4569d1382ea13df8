"""The picture of `bench_data`: sync delays as a distribution, cutover freezes move by move.

Left: the share of changes applied within a given delay (capture to apply), one line per target
database, so the median and the tail read off at a glance. Right: each cutover's and rollback's
freeze window, in the order they ran. This module must never measure anything.
"""

from __future__ import annotations

from pathlib import Path

NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def draw(delays: dict[str, list[float]], windows: dict[str, list[float]], path: Path) -> Path:
    """Write the figure to `path` (PNG) and return it; either panel may be empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, seconds in delays.items():
        ordered = sorted(value * 1000 for value in seconds)
        if ordered:
            shares = [(index + 1) / len(ordered) for index in range(len(ordered))]
            left.plot(ordered, shares, label=f"SQLite -> {NAMES.get(target, target)}")
    left.set_xscale("log")
    left.set_xlabel("capture to apply (ms, log scale)")
    left.set_ylabel("share of changes applied")
    left.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
    left.set_title("Sync delay under a steady write load")
    if delays:
        left.legend(loc="lower right")
    for kind, measured in windows.items():
        right.plot(
            range(1, len(measured) + 1), [value * 1000 for value in measured], "o-", label=kind
        )
    moves = max((len(measured) for measured in windows.values()), default=0)
    right.set_xticks(range(1, moves + 1))
    right.set_xlabel("move")
    right.set_ylabel("writes frozen (ms)")
    right.set_ylim(bottom=0)
    right.set_title("Freeze window of each cutover and rollback")
    if windows:
        right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
