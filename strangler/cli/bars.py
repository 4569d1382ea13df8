"""Progress bars for work done table by table (seeding, backfill, verify): one bar per table.

The work reports `progress(table, done, total)`; a bar appears for each new table. This module
must never do the work it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

TableProgress = Callable[[str, int, int], None]


@contextmanager
def table_bars(console: Console, verb: str, transient: bool = False) -> Iterator[TableProgress]:
    """Bars labelled `verb table`; yields the callback the work reports to."""
    with Progress(
        TextColumn(f"[bold]{verb}[/] {{task.description}}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=total)
            progress.update(tasks[table], completed=done, total=max(total, done))

        yield report
