"""`strangler data ...`: the data path from the command line, with progress bars.

Wiring only: each command opens the context's two databases (from `MONOLITH_DATABASE_URL` and
`<CONTEXT>_DATABASE_URL`, else the home's SQLite files) and calls `strangler.datapath`. The
long-running sync is its own process, `python -m migrations.data.sync <context>`. Errors are one
line and a non-zero exit, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from strangler.cli.bars import table_bars
from strangler.datapath import apply, backfill, capture, cutover, schemas, state, status, verify
from strangler.datapath.contexts import Direction, Owner, UnknownContext, context_names
from strangler.datapath.link import Link
from strangler.runtime.home import Home
from strangler.runtime.run_record import read_run
from strangler_proxy.client import ProxyAdmin, ProxyAdminError

data_app = typer.Typer(
    help="The data path: capture, backfill, verify, sync, cutover, rollback.",
    no_args_is_help=True,
)
capture_app = typer.Typer(help="Change capture on a context's tables.", no_args_is_help=True)
data_app.add_typer(capture_app, name="capture")
console = Console()
T = TypeVar("T")
CONTEXT = typer.Argument(..., help="A context whose tables move (see strangler.toml).")
PROXY_URL = typer.Option(
    None, help="The proxy's admin API (default: this folder's running system's)."
)
MAX_FREEZE = typer.Option(30.0, help="Seconds the write freeze may last at most.")
CHUNK_ROWS = typer.Option(backfill.DEFAULT_CHUNK_ROWS, min=1, max=100_000, help="Rows per chunk.")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/]: {message}")
    return typer.Exit(1)


@contextmanager
def _link(context: str, migrate: bool = False) -> Iterator[Link]:
    """The context's two databases; a known failure becomes one line and exit code 1."""
    home = Home.here()
    try:
        monolith, service = home.database_url("monolith"), home.database_url(context)
        if migrate:
            schemas.upgrade("monolith", monolith, workspace=home.workspace)
            schemas.upgrade(context, service, workspace=home.workspace)
        with Link.open(context, monolith, service, workspace=home.workspace) as link:
            yield link
    except UnknownContext as error:
        raise _fail(str(error)) from error
    except (cutover.MoveRefused, ProxyAdminError, apply.DrainTimeout) as error:
        raise _fail(str(error)) from error
    except SQLAlchemyError as error:
        raise _fail(f"a database refused: {str(error).splitlines()[0]}") from error


def _bars(verb: str) -> AbstractContextManager[Callable[[str, int, int], None]]:
    """A progress bar per table; yields the `progress(table, done, total)` callback."""
    return table_bars(console, verb)


@capture_app.command("start")
def capture_start(
    context: str = CONTEXT, direction: Direction = typer.Option(Direction.FORWARD)
) -> None:
    """Install the capture triggers of CONTEXT (forward: on the monolith's tables)."""
    with _link(context, migrate=True) as link:
        started = capture.start(link, direction)
    console.print(f"capturing {', '.join(started) or 'already: nothing to do'} ({direction})")


@capture_app.command("stop")
def capture_stop(
    context: str = CONTEXT, direction: Direction = typer.Option(Direction.FORWARD)
) -> None:
    """Remove the capture triggers of CONTEXT (stopping forward capture forgets the backfill)."""
    with _link(context) as link:
        stopped = capture.stop(link, direction)
    console.print(f"stopped capturing {', '.join(stopped)} ({direction})")


@data_app.command("backfill")
def backfill_command(context: str = CONTEXT, chunk_rows: int = CHUNK_ROWS) -> None:
    """Start capture, then copy CONTEXT's rows to its service; resumes where it stopped."""
    with _link(context, migrate=True) as link, _bars("copying") as progress:
        report = backfill.backfill(link, chunk_rows, progress)
    console.print(
        f"backfilled {report.rows_this_run:,} rows in {report.seconds:.2f}s "
        f"([bold]{report.rows_per_second:,.0f} rows/s[/]); the sync now brings them current"
    )


def _owner_direction(link: Link) -> Direction:
    """The direction from the owner to the replica: what verify compares."""
    owner = state.read(link.monolith, link.context.name).owner
    return Direction.FORWARD if owner is Owner.MONOLITH else Direction.REVERSE


def _show(report: verify.VerifyReport) -> None:
    for difference in report.differences:
        console.print(f"  [yellow]differs[/] {difference.describe()}")
    verdict = (
        "[green]equal[/]" if report.is_equal else f"[red]{len(report.differences)} ranges differ[/]"
    )
    console.print(
        f"{report.rows:,} rows in {report.chunks:,} chunks: {verdict} ({report.seconds:.2f}s)"
    )


@data_app.command("verify")
def verify_command(context: str = CONTEXT, chunk_rows: int = CHUNK_ROWS) -> None:
    """Compare chunk checksums of CONTEXT on both sides; exit 1 if a range differs."""
    with _link(context) as link, _bars("verifying") as progress:
        report = verify.verify(link, _owner_direction(link), chunk_rows, progress)
    _show(report)
    if not report.is_equal:
        raise typer.Exit(1)


@data_app.command("repair")
def repair_command(context: str = CONTEXT, chunk_rows: int = CHUNK_ROWS) -> None:
    """Verify CONTEXT, re-copy only the ranges that differ, and verify them again."""
    with _link(context) as link:
        with _bars("verifying") as progress:
            report = verify.verify(link, _owner_direction(link), chunk_rows, progress)
        _show(report)
        repaired = verify.repair(link, report)
        again = verify.verify_ranges(link, report.direction, report.differences)
    console.print(
        f"repaired {repaired.ranges} ranges: {repaired.rows_copied:,} rows copied, "
        f"{repaired.rows_deleted:,} deleted; {'now equal' if again.is_equal else 'still differs'}"
    )
    if not again.is_equal:
        raise typer.Exit(1)


@data_app.command("sync")
def sync_command(context: str = CONTEXT) -> None:
    """Apply CONTEXT's change log until it has caught up, once (the process runs for ever)."""
    with _link(context) as link:
        feeds = link.context.directions(state.read(link.monolith, link.context.name).owner)
        with _bars("applying") as progress:
            drained = apply.drain(link, feeds, progress=lambda feed, n: progress(feed, n, n))
    applied = ", ".join(f"{feed} {n:,}" for feed, n in drained.entries.items())
    console.print(f"caught up in {drained.seconds:.2f}s (entries applied: {applied})")


@data_app.command("status")
def status_command(
    contexts: list[str] | None = typer.Argument(None, help="Contexts (default: all)."),
) -> None:
    """Who owns each context's data, its captures, backfill, lag and last freeze."""
    table = Table("context", "owner", "under way", "capturing", "backfill", "lag", "last freeze")
    for name in contexts or context_names(Home.here().workspace):
        with _link(name) as link:
            found = status.describe(link)
        done = sum(table.rows_copied for table in found.backfill)
        filled = "complete" if found.is_backfilled else "no" if not found.backfill else "partial"
        lags = ", ".join(
            f"{feed} {lag.entries} ({lag.seconds:.1f}s)" for feed, lag in found.lags.items()
        )
        freeze = found.state.last_freeze_seconds
        table.add_row(
            name,
            found.state.owner.value,
            f"{found.state.operation} {found.state.step}".strip() or "-",
            "\n".join(found.capturing) or "-",
            f"{filled} ({done:,} rows)" if found.backfill else "-",
            lags or "-",
            f"{freeze * 1000:.0f} ms" if freeze else "-",
        )
    console.print(table)


def _admin_url(home: Home, given: str | None) -> str:
    """The admin API to use: the one given, else the one this folder's system records."""
    if given:
        return given
    record = read_run(home.run_file)
    if record is None:
        raise _fail("nothing runs from this folder: give --proxy-url, or start `strangler up`")
    return record.admin_url


def _move(context: str, proxy_url: str | None, max_freeze: float, to: str) -> None:
    """Run a cutover or a rollback, printing each step, then the freeze window it took."""
    home = Home.here()
    record = read_run(home.run_file)
    if proxy_url is None and record is not None and record.data_plane == "nginx":
        # nginx sends a context through the Python proxy (where a freeze holds) only while a
        # move of it is recorded: a bare cutover would freeze nothing nginx serves directly.
        raise _fail(
            "this system runs nginx in front of the Python proxy: move data with"
            f" `strangler extract {context}` or `strangler rollback {context}`"
        )
    admin = ProxyAdmin(_admin_url(home, proxy_url), home.admin_token())
    move = cutover.cutover if to == "service" else cutover.rollback
    try:
        with _link(context) as link:
            report = move(link, admin, max_freeze, say=lambda step: console.print(f"- {step}"))
    finally:
        admin.close()
    steps = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in report.steps.items())
    console.print(
        f"[green]{report.context} is owned by the {report.owner.value}[/]; writes were frozen "
        f"[bold]{report.freeze_seconds * 1000:.0f} ms[/] ({steps})"
    )
    if report.leaked_entries:
        console.print(f"[red]{report.leaked_entries} writes slipped past the freeze[/]: verify")


@data_app.command("cutover")
def cutover_command(
    context: str = CONTEXT, proxy_url: str | None = PROXY_URL, max_freeze: float = MAX_FREEZE
) -> None:
    """Move CONTEXT's data and writes to its service, with a bounded write freeze."""
    _move(context, proxy_url, max_freeze, "service")


@data_app.command("rollback")
def rollback_command(
    context: str = CONTEXT, proxy_url: str | None = PROXY_URL, max_freeze: float = MAX_FREEZE
) -> None:
    """Give CONTEXT's data and writes back to the monolith, with every service-side write."""
    _move(context, proxy_url, max_freeze, "monolith")
