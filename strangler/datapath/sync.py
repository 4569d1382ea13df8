"""The sync: a long-running process that applies a context's change log and exports its lag.

    SYNC_MONOLITH_DATABASE_URL=... SYNC_SERVICE_DATABASE_URL=... SYNC_PORT=9401 \\
        python -m migrations.data.sync forum
    python -m migrations.data.sync forum --drain      # apply until caught up, then exit

One process per context. Every loop it offers each of the context's feeds a batch in each
direction the feed can flow; the feed's position (active or not, backfill complete or not)
decides which apply, so the process follows a cutover or a rollback by itself and needs no
restart. A failed batch (a database away, a row the target cannot take yet, e.g. a post whose
author has not reached the monolith) is retried after a pause; its position did not move.
Lag (entries, and seconds since the oldest unapplied change) is measured every second and
exported with the delay of every applied entry on `/metrics`; `/healthz` is 200 while both
databases answer. SIGTERM or SIGINT finish the batch; SIGKILL is safe too. This module must
never change a feed's capture or position by itself.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from strangler.datapath import apply, change_log, positions
from strangler.datapath.contexts import Direction, Feed
from strangler.datapath.link import Link
from strangler.datapath.operations import serve_operations
from strangler.plumbing.database import can_connect
from strangler.plumbing.logs import configure_logging, get_logger

log = get_logger("sync")
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SyncSettings(BaseSettings):
    """The sync process's settings, from `SYNC_*` variables (and a local `.env`)."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", env_file=".env", extra="ignore")

    monolith_database_url: str = Field(
        default="sqlite:///monolith.sqlite3",
        validation_alias=AliasChoices("SYNC_MONOLITH_DATABASE_URL", "MONOLITH_DATABASE_URL"),
    )
    service_database_url: str | None = None  # default: <CONTEXT>_DATABASE_URL
    batch_rows: int = Field(default=1000, ge=1, le=50_000)
    poll_seconds: float = Field(default=0.05, gt=0, le=60)
    retry_seconds: float = Field(default=0.5, ge=0, le=60)
    prune_seconds: float = Field(default=30.0, gt=0)
    lag_seconds: float = Field(default=1.0, gt=0)
    host: str = "127.0.0.1"
    port: int | None = None  # /healthz and /metrics; off when unset
    log_level: str = "INFO"

    def service_url(self, context: str) -> str:
        default = f"sqlite:///{context}.sqlite3"
        return self.service_database_url or os.environ.get(
            f"{context.upper()}_DATABASE_URL", default
        )


class SyncMetrics:
    """What a sync exports, by feed and direction."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["feed", "direction"]
        self.lag_entries = Gauge(
            "data_sync_lag_entries", "Changes captured but not yet applied", labels,
            registry=self.registry,
        )  # fmt: skip
        self.lag_seconds = Gauge(
            "data_sync_lag_seconds", "Age of the oldest change not yet applied", labels,
            registry=self.registry,
        )  # fmt: skip
        self.applied = Counter(
            "data_sync_applied_entries_total", "Change log entries applied", labels,
            registry=self.registry,
        )  # fmt: skip
        self.rows = Counter(
            "data_sync_rows_total", "Rows written to the target", [*labels, "operation"],
            registry=self.registry,
        )  # fmt: skip
        self.delay = Histogram(
            "data_sync_entry_delay_seconds", "Time from a change's capture to its apply", labels,
            buckets=DELAY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.failures = Counter(
            "data_sync_failures_total", "Batches that failed and will be retried", labels,
            registry=self.registry,
        )  # fmt: skip


def every_pair(link: Link) -> list[tuple[Feed, Direction]]:
    """Each feed with each direction it can flow in; positions decide which are live."""
    pairs = [(feed, Direction.FORWARD) for feed in link.context.feeds]
    return [*pairs, (link.context.main, Direction.REVERSE)]


class Syncer:
    """The loop of one sync process; `on_batch(batch, applied_at)` sees every applied batch."""

    def __init__(
        self,
        link: Link,
        settings: SyncSettings,
        metrics: SyncMetrics,
        on_batch: Callable[[apply.Batch, float], None] | None = None,
    ) -> None:
        self.link = link
        self.settings = settings
        self.metrics = metrics
        self.on_batch = on_batch
        self.pairs = every_pair(link)

    def step(self) -> int:
        """Offer every feed one batch; the number of entries applied."""
        applied = 0
        for feed, direction in self.pairs:
            labels = (feed.name, direction.value)
            try:
                batch = apply.apply_batch(self.link, feed, direction, self.settings.batch_rows)
            except SQLAlchemyError as error:
                self.metrics.failures.labels(*labels).inc()
                log.warning("batch failed; retrying", feed=feed.name, direction=direction.value,
                            error=str(error).splitlines()[0])  # fmt: skip
                time.sleep(self.settings.retry_seconds)
                continue
            if batch.entries:
                self._count(batch, labels)
            applied += batch.entries
        return applied

    def _count(self, batch: apply.Batch, labels: tuple[str, str]) -> None:
        applied_at = time.time()
        self.metrics.applied.labels(*labels).inc(batch.entries)
        self.metrics.rows.labels(*labels, "upsert").inc(batch.upserted)
        self.metrics.rows.labels(*labels, "delete").inc(batch.deleted)
        delay = self.metrics.delay.labels(*labels)
        for captured_at in batch.captured_at:
            delay.observe(max(0.0, applied_at - captured_at))
        if self.on_batch is not None:
            self.on_batch(batch, applied_at)

    def measure(self) -> None:
        """Lag of every live feed into the gauges (and prune what every feed has applied)."""
        for feed, direction in self.pairs:
            position = positions.current(self.link.target(direction), feed.position_key(direction))
            if position is None or not position.is_active:
                continue
            lag = change_log.lag(self.link.source(direction), feed.name, position)
            self.metrics.lag_entries.labels(feed.name, direction.value).set(lag.entries)
            self.metrics.lag_seconds.labels(feed.name, direction.value).set(lag.seconds)

    def prune(self) -> None:
        for feed, direction in self.pairs:
            position = positions.current(self.link.target(direction), feed.position_key(direction))
            if position is not None and position.is_active:
                change_log.prune(self.link.source(direction), feed.name, position)

    def run(self, stopping: threading.Event) -> None:
        """Apply until `stopping` is set: batches back to back while there is work."""
        measured = pruned = 0.0
        while not stopping.is_set():
            applied = self.step()
            now = time.monotonic()
            try:
                if now - measured >= self.settings.lag_seconds:
                    self.measure()
                    measured = now
                if now - pruned >= self.settings.prune_seconds:
                    self.prune()
                    pruned = now
            except SQLAlchemyError as error:
                log.warning("lag or prune failed", error=str(error).splitlines()[0])
            if not applied:
                stopping.wait(self.settings.poll_seconds)


def main(argv: Sequence[str] | None = None) -> None:
    from strangler.events.process import stop_on_signals

    parser = argparse.ArgumentParser(prog="python -m migrations.data.sync", description=__doc__)
    parser.add_argument("context", help="users, forum or polls")
    parser.add_argument("--drain", action="store_true", help="apply until caught up, then exit")
    arguments = parser.parse_args(argv)
    settings = SyncSettings()
    configure_logging(f"{arguments.context}-sync", settings.log_level)
    link = Link.open(
        arguments.context, settings.monolith_database_url, settings.service_url(arguments.context)
    )
    try:
        link.ensure_bookkeeping()
        if arguments.drain:
            drained = apply.drain(link, every_pair(link), settings.batch_rows)
            log.info("drained", entries=drained.entries, seconds=round(drained.seconds, 3))
            return
        metrics = SyncMetrics()
        syncer = Syncer(link, settings, metrics)
        server = None
        if settings.port is not None:
            server = serve_operations(
                settings.host,
                settings.port,
                metrics.registry,
                lambda: can_connect(link.monolith) and can_connect(link.service),
            )
        log.info("sync started", context=arguments.context, port=settings.port)
        syncer.run(stop_on_signals())
        if server is not None:
            server.shutdown()
    finally:
        link.close()


if __name__ == "__main__":
    main()
