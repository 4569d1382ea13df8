"""`strangler report` and `strangler diff-reports`: a saved load comparison, rendered or compared.

Wiring only: `report` reads a `report.json` and writes the HTML page, the Markdown summary and
the plots again (`strangler.compare.report`); `diff-reports` compares two saved reports
(`strangler.compare.report_diff`) and prints a table or Markdown. A missing, unreadable or
incomparable report is one line and exit 2; a regression is exit 1 when asked for. This module
must never compute a figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from strangler.compare import report_diff
from strangler.compare.report import write_report
from strangler.compare.results import Comparison

console = Console(highlight=False, soft_wrap=True)
BAD_INPUT = 2
REGRESSION = 1


def _load(path: Path) -> Comparison:
    """A saved report; anything wrong with the file is one line and exit 2."""
    try:
        return Comparison.load(path)
    except FileNotFoundError as error:
        raise _fail(f"no report at {path}") from error
    except json.JSONDecodeError as error:
        raise _fail(f"{path} is not JSON: {error}") from error
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise _fail(f"{path} is not a load comparison report: {error!r}") from error


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/]: {message}")
    return typer.Exit(BAD_INPUT)


def report(
    json_path: Path = typer.Argument(..., help="A report.json a comparison saved."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the report (default: the JSON's folder)."
    ),
) -> None:
    """Render the HTML page, Markdown summary and plots of a saved report.json again."""
    comparison = _load(json_path)
    folder = output or json_path.parent
    try:
        files = write_report(comparison, folder)
    except OSError as error:
        raise _fail(f"cannot write the report into {folder}: {error}") from error
    console.print(f"report: [bold]{files.html}[/] (summary {files.summary})")


def diff_reports(
    before: Path = typer.Argument(..., help="The report.json before the change."),
    after: Path = typer.Argument(..., help="The report.json after the change."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown, not a table."),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="Exit 1 if any figure regressed."
    ),
    force: bool = typer.Option(
        False, "--force", help="Compare even if the settings make the figures incomparable."
    ),
    limit_drop: float = typer.Option(10.0, help="% the limit may fall before it is a regression."),
    p95_rise: float = typer.Option(20.0, help="% the reference p95 may rise."),
    cpu_rise: float = typer.Option(15.0, help="% the CPU per 1,000 requests may rise."),
    memory_rise: float = typer.Option(20.0, help="% the peak memory may rise."),
    isolation_rise: float = typer.Option(20.0, help="% the isolation ratio may rise."),
) -> None:
    """Compare two saved reports, figure by figure, and flag regressions."""
    thresholds = report_diff.Thresholds(
        limit_drop=limit_drop / 100,
        p95_rise=p95_rise / 100,
        cpu_rise=cpu_rise / 100,
        memory_rise=memory_rise / 100,
        isolation_rise=isolation_rise / 100,
    )
    try:
        found = report_diff.diff(_load(before), _load(after), thresholds, is_forced=force)
    except report_diff.Incomparable as error:
        raise _fail(f"{error} (--force compares them anyway)") from error
    if markdown:
        console.out(report_diff.markdown(found), end="")
    else:
        console.print(rich_table(found))
    if fail_on_regression and found.regressions:
        raise typer.Exit(REGRESSION)


def rich_table(found: report_diff.ReportDiff) -> Table:
    """The diff as a rich table; regressions in red, the notes in its caption."""
    table = Table(
        title="Load comparison: before -> after", caption="\n".join(report_diff.notes(found))
    )
    for header in report_diff.HEADERS:
        table.add_column(
            header, justify="right" if header in ("before", "after", "change") else "left"
        )
    for change in found.changes:
        table.add_row(*report_diff.cells(change), style="red" if change.is_regression else None)
    return table
