"""The demo's last screen: each stage's time and check, what the steady load saw, the freezes,
the comparison's headline figures and its verdict, and where its report is.

The comparison's figures are read from the Markdown summary it wrote (its first table, by
column names), so this screen shows whatever the comparison measured and never computes a
figure itself. This module must never run anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from strangler.cli.demo import DemoResult

# The comparison's headline columns worth a glance, as its summary names them.
HEADLINE = ("architecture", "limit (req/s)", "p95 at limit (ms)", "CPU s / 1,000 req at limit",
            "background CPU (cores, no traffic)", "peak memory (MiB)")  # fmt: skip


def show_summary(result: DemoResult, console: Console) -> None:
    console.print(
        Panel(_stack(_stages(result), _load(result)), title="strangler demo", expand=False)
    )
    comparison = result.report and comparison_headline(result.report / "summary.md")
    if comparison:
        console.print(comparison)
    for sentence in comparison_verdict(result.report / "summary.md") if result.report else []:
        console.print(f"- {sentence}")
    if result.report:
        console.print(f"the comparison's report: [bold]{result.report / 'report.html'}[/]")
        console.print(f"its summary: {result.report / 'summary.md'}")
    else:
        console.print(f"no comparison report: {result.comparison_note}")
    console.print(f"demo wall time: [bold]{result.seconds:.0f} s[/]; nothing is left running")


def _stages(result: DemoResult) -> Table:
    stages = Table("stage", "title", "seconds", "check", title="the migration, stage by stage")
    for figures in result.stages:
        passed = f"{figures.checks_passed}/{figures.checks}"
        stages.add_row(str(figures.stage), figures.title, f"{figures.seconds:.1f}", passed)
    return stages


def _load(result: DemoResult) -> Table:
    report = result.load
    checked = "-" if report is None else f"{report.read_back}/{report.acknowledged}"
    freezes = ", ".join(
        f"{window.context} {1000 * window.frozen_seconds:.0f} ms"
        for window in result.state.freezes
        if window.frozen_seconds is not None
    )
    load = Table.grid(padding=(0, 2))
    if report is None:
        load.add_row("steady load", "none (the workspace names no `load.steady`)")
        return load
    load.add_row("requests under the steady load", f"{report.requests:,}")
    outside = f"{report.unexplained_failures} outside a write freeze"
    load.add_row("failed", f"{report.failures} ({outside})")
    load.add_row("acknowledged writes read back", checked)
    load.add_row("writes frozen (by the proxy's clock)", freezes or "-")
    return load


def comparison_headline(summary: Path) -> Table | None:
    """The first table of the comparison's summary, cut to the headline columns."""
    try:
        lines = summary.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    rows = [_cells(line) for line in lines if line.startswith("|")]
    if len(rows) < 3:
        return None
    header = rows[0]
    wanted = [header.index(name) for name in HEADLINE if name in header]
    table = Table(title="the load comparison (short)")
    for index in wanted:  # fold, never cut: an architecture's title is its whole name
        table.add_column(header[index], overflow="fold")
    for row in rows[2:]:
        if len(row) != len(header):
            break  # the next table
        table.add_row(*(row[index] for index in wanted))
    return table


def comparison_verdict(summary: Path) -> list[str]:
    """The verdict's sentences, as the comparison's summary states them."""
    try:
        lines = summary.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    if "### Verdict" not in lines:
        return []
    found = []
    for line in lines[lines.index("### Verdict") + 1 :]:
        if line.startswith("- "):
            found.append(line[2:])
        elif line.strip():
            break
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _stack(*parts: Table) -> Table:
    grid = Table.grid()
    for part in parts:
        grid.add_row(part)
    return grid
