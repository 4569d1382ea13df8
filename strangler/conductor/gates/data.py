"""The gates that bring a context's data to its service before its traffic: its database's
schema, change capture on the monolith, the backfill, the sync, and verify.

Each is small; together they make the service's copy current and provably equal, and each can
be run again after a crash (capture and the sync's position are idempotent, the backfill
resumes after its last chunk, verify only reads). This module must never touch the routes.
"""

from __future__ import annotations

from dataclasses import dataclass

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed, wait_until
from strangler.datapath import apply, backfill, capture, schemas, status, verify
from strangler.datapath.contexts import Direction, Owner


@dataclass(frozen=True)
class Schema:
    """Migrate the service's database to its head revision."""

    conductor: Conductor
    context: str
    name: str = "schema"

    @property
    def title(self) -> str:
        return f"migrate the {self.context} database"

    @property
    def undo_title(self) -> str:
        return f"keep the {self.context} database (its schema stays)"

    def run(self) -> str:
        home = self.conductor.home
        try:
            schemas.upgrade(
                self.context, home.database_url(self.context), workspace=home.workspace
            )
        except Exception as error:  # alembic and the drivers raise many kinds: all are this gate's
            variable = home.workspace.url_variable(self.context)
            raise GateFailed(
                f"the {self.context} database refused its migration: {str(error).splitlines()[0]}",
                f"check {variable} and that the database answers, then run the same command again",
            ) from error
        return "at head"

    def undo(self) -> str:
        return "kept"


@dataclass(frozen=True)
class Capture:
    """Record every change of the context's monolith tables in a change log."""

    conductor: Conductor
    context: str
    name: str = "capture"
    title: str = "start change capture on the monolith"
    undo_title: str = "stop change capture on the monolith"

    def run(self) -> str:
        with self.conductor.link(self.context) as link:
            capture.start(link, Direction.FORWARD)
            capturing = status.describe(link).capturing
            missing = [f.name for f in link.context.feeds if f"{f.name} forward" not in capturing]
        if missing:
            raise GateFailed(f"no capture on {', '.join(missing)}", "run the same command again")
        return ", ".join(capturing)

    def undo(self) -> str:
        with self.conductor.link(self.context) as link:
            stopped = capture.stop(link, Direction.FORWARD)
        return f"stopped {', '.join(stopped)}" if stopped else "none was on"


@dataclass(frozen=True)
class Backfill:
    """Copy the existing rows, in key order, resuming after the last copied chunk."""

    conductor: Conductor
    context: str
    name: str = "backfill"
    title: str = "copy the existing rows"
    undo_title: str = "keep the copied rows (the service's database is its own)"

    def run(self) -> str:
        with self.conductor.link(self.context) as link:
            report = backfill.backfill(link)
            if not status.describe(link).is_backfilled:
                raise GateFailed(
                    "the backfill stopped before every table was copied",
                    "run the same command again: the backfill resumes after its last chunk",
                )
        return f"{report.rows_this_run:,} rows copied in {report.seconds:.1f}s"

    def undo(self) -> str:
        return "kept"


@dataclass(frozen=True)
class Sync:
    """Run the context's sync and wait until it has caught up."""

    conductor: Conductor
    context: str
    name: str = "sync"
    title: str = "start the sync and let it catch up"
    undo_title: str = "stop the sync"

    def run(self) -> str:
        conductor = self.conductor
        conductor.need(runs_sync=True)
        limit = conductor.settings.max_sync_lag
        with conductor.link(self.context) as link:
            feeds = link.context.directions(Owner.MONOLITH)

            def behind() -> int:
                return sum(lag.entries for lag in apply.lags(link, feeds).values())

            if not wait_until(lambda: behind() <= limit, conductor.settings.timeout_seconds):
                raise GateFailed(
                    f"the sync is still {behind()} changes behind",
                    f"see {conductor.runtime.log_of(f'{self.context}-sync')}, then run the same"
                    " command again",
                )
            return f"{behind()} changes behind"

    def undo(self) -> str:
        self.conductor.need(runs_sync=False)
        return "stopped"


@dataclass(frozen=True)
class Verify:
    """Compare every chunk's checksum on both sides (a difference under live writes may only
    be the sync's lag: those ranges are drained and compared again)."""

    conductor: Conductor
    context: str
    name: str = "verify"
    title: str = "verify both copies match"
    undo_title: str = "nothing to undo for verify"

    def run(self) -> str:
        with self.conductor.link(self.context) as link:
            report = verify.verify(link, Direction.FORWARD)
            for _ in range(3):
                if report.is_equal:
                    break
                apply.drain(link, link.context.directions(Owner.MONOLITH))
                report = verify.verify_ranges(link, Direction.FORWARD, report.differences)
        if not report.is_equal:
            shown = "; ".join(difference.describe() for difference in report.differences[:3])
            raise GateFailed(
                f"{len(report.differences)} key ranges differ: {shown}",
                f"`strangler data repair {self.context}`, then run the same command again",
            )
        return f"every chunk's checksum matches ({report.rows:,} rows in {report.chunks:,} chunks)"

    def undo(self) -> str:
        return "nothing to undo"
