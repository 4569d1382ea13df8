"""The gates that bring a context's data to its items when it is extracted to functions.

In the order a move runs them: the functions and the AWS emulator start (the stream poller
provisions the context's table with its stream and its bucket; the data path its bookkeeping
table), change capture on the monolith, the backfill into the items, the sync, and verify by
counts and per-range checksums. Shadow, canary and cutover follow as for a service (the
cutover gate moves the items' way). Each can be run again after a crash: capture and the
feed's position are idempotent, the backfill resumes after its last chunk, verify only reads.
This module must never touch the routes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates.base import GateFailed, wait_until
from strangler.serverless.data import backfill, forward, verify
from strangler.serverless.data.link import provision_bookkeeping
from strangler.serverless.emulator import EMULATOR


@dataclass(frozen=True)
class Functions:
    """Start the context's functions: the emulator, the stream poller (which provisions the
    table and the bucket), the proxy's function and bucket targets; no route reaches them yet."""

    conductor: Conductor
    context: str
    name: str = "functions"

    @property
    def title(self) -> str:
        return f"start the {self.context} functions and provision their table (on the emulator)"

    @property
    def undo_title(self) -> str:
        return f"stop the {self.context} functions (the emulator keeps its writes on disk)"

    def run(self) -> str:
        self.conductor.need(runs_service=True)
        with self.conductor.items_link(self.context) as link:
            provision_bookkeeping(link)
            status = link.dynamodb.describe_table(TableName=link.table_name)["Table"]
        return f"table {link.table_name} {status['TableStatus'].lower()}; {EMULATOR} running"

    def undo(self) -> str:
        self.conductor.need(runs_service=False)
        return "stopped"


@dataclass(frozen=True)
class ItemsCapture:
    """Record every change of the context's monolith tables in the change log of its items'
    feed."""

    conductor: Conductor
    context: str
    name: str = "capture"
    title: str = "start change capture on the monolith (for the items)"
    undo_title: str = "stop change capture on the monolith"

    def run(self) -> str:
        with self.conductor.items_link(self.context) as link:
            started = forward.start(link)
            feed = link.feed.name
        return f"{feed} forward" + ("" if started else " (already on)")

    def undo(self) -> str:
        with self.conductor.items_link(self.context) as link:
            forward.stop(link)
        return "stopped"


@dataclass(frozen=True)
class ItemsBackfill:
    """Copy the existing rows into items, in key order, resuming after the last chunk."""

    conductor: Conductor
    context: str
    name: str = "backfill"
    title: str = "copy the existing rows into items"
    undo_title: str = "keep the copied items (the table is the functions' own)"

    def run(self) -> str:
        started = time.monotonic()
        with self.conductor.items_link(self.context) as link:
            copied = backfill.backfill(link)
            if not backfill.is_complete(link):
                raise GateFailed(
                    "the backfill stopped before every table was copied",
                    "run the same command again: the backfill resumes after its last chunk",
                )
        return f"{copied:,} rows copied in {time.monotonic() - started:.1f}s"

    def undo(self) -> str:
        return "kept"


@dataclass(frozen=True)
class ItemsSync:
    """Run the context's sync and wait until its items have caught up."""

    conductor: Conductor
    context: str
    name: str = "sync"
    title: str = "start the sync into the items and let it catch up"
    undo_title: str = "stop the sync"

    def run(self) -> str:
        conductor = self.conductor
        conductor.need(runs_sync=True)
        limit = conductor.settings.max_sync_lag
        with conductor.items_link(self.context) as link:

            def behind() -> int:
                lag = forward.lag(link)
                return 0 if lag is None else lag.entries

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
class ItemsVerify:
    """Compare every table's count and every key range's checksum on both sides (a difference
    under live writes may only be the sync's lag: it is drained and compared again)."""

    conductor: Conductor
    context: str
    name: str = "verify"
    title: str = "verify the items match the rows"
    undo_title: str = "nothing to undo for verify"

    def run(self) -> str:
        with self.conductor.items_link(self.context) as link:
            timeout = self.conductor.settings.timeout_seconds
            report = verify.verify_drained(link, lambda: forward.drain(link, timeout))
        if not report.is_equal:
            shown = "; ".join(difference.describe() for difference in report.differences[:3])
            raise GateFailed(
                f"{len(report.differences)} key ranges differ: {shown}",
                "run the same command again once the sync has caught up",
            )
        rows = sum(count.rows for count in report.counts.values())
        return f"every range's checksum matches ({rows:,} rows in {report.ranges:,} ranges)"

    def undo(self) -> str:
        return "nothing to undo"
