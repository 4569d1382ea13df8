"""The sync of a context extracted to functions: a long-running process for both of its feeds.

    MONOLITH_DATABASE_URL=... POLLS_TABLE=polls AWS_ENDPOINT_URL=... SYNC_PORT=9401 \\
        python -m strangler.serverless.data.sync polls

Every loop it offers a batch to the forward feed (the monolith's change log into the items,
`forward`) and one to the reverse feed (the table's stream into the monolith's rows,
`reverse`); each feed's own position (active or not, backfill complete or not) decides which
applies, so the process follows a cutover or a rollback by itself, as the SQL sync does
(`strangler.datapath.sync`). A failed batch (the emulator or a database away, a transaction
refused) is retried after a pause; no position moved. Lag is measured every second and
exported with the SQL sync's metrics (`data_sync_*`, by feed and direction); `/healthz` is 200
while the monolith's database and the table answer. SIGTERM or SIGINT finish the batch;
SIGKILL is safe too (each batch commits with its position). This module must never change a
feed's capture or position by itself.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler.datapath.contexts import Direction
from strangler.datapath.operations import serve_operations
from strangler.datapath.sync import SyncMetrics
from strangler.plumbing.database import can_connect
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.serverless.data import forward, reverse
from strangler.serverless.data.link import ItemsLink

log = get_logger("items-sync")


class ItemsSyncSettings(BaseSettings):
    """The process's settings, from `SYNC_*` variables; the table is `NAME_TABLE` and AWS is
    boto3's own configuration (`AWS_ENDPOINT_URL` for the emulator)."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", env_file=".env", extra="ignore")

    monolith_database_url: str = Field(
        default="sqlite:///monolith.sqlite3",
        validation_alias=AliasChoices("SYNC_MONOLITH_DATABASE_URL", "MONOLITH_DATABASE_URL"),
    )
    batch_rows: int = Field(default=forward.DEFAULT_LIMIT, ge=1, le=5_000)
    poll_seconds: float = Field(default=0.1, gt=0, le=60)
    retry_seconds: float = Field(default=0.5, ge=0, le=60)
    lag_seconds: float = Field(default=1.0, gt=0)
    host: str = "127.0.0.1"
    port: int | None = None  # /healthz and /metrics; off when unset
    log_level: str = "INFO"


def _failures() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, BotoCoreError, ClientError, forward.NotStarted)


class ItemsSyncer:
    """The loop of one process: both feeds, a batch each per step."""

    def __init__(self, link: ItemsLink, settings: ItemsSyncSettings, metrics: SyncMetrics) -> None:
        self.link = link
        self.settings = settings
        self.metrics = metrics
        self.failures = _failures()

    def _labels(self, direction: Direction) -> tuple[str, str]:
        return self.link.feed.name, direction.value

    def step(self) -> int:
        """Offer each feed one batch; the changes applied."""
        applied = 0
        for direction in (Direction.FORWARD, Direction.REVERSE):
            try:
                applied += self._offer(direction)
            except self.failures as error:
                self.metrics.failures.labels(*self._labels(direction)).inc()
                log.warning(
                    "batch failed; retrying", feed=self.link.feed.name,
                    direction=direction.value, error=str(error).splitlines()[0],
                )  # fmt: skip
                time.sleep(self.settings.retry_seconds)
        return applied

    def _offer(self, direction: Direction) -> int:
        labels = self._labels(direction)
        applied_at = time.time()
        if direction is Direction.FORWARD:
            batch: Any = forward.apply_batch(self.link, self.settings.batch_rows)
            if not batch.entries:
                return 0
            self.metrics.applied.labels(*labels).inc(batch.entries)
            self.metrics.rows.labels(*labels, "upsert").inc(batch.put)
            delay = self.metrics.delay.labels(*labels)
            for captured_at in batch.captured_at:
                delay.observe(max(0.0, applied_at - captured_at))
            return int(batch.entries)
        batch = reverse.apply_batch(self.link, self.settings.batch_rows)
        if not batch.records:
            return 0
        self.metrics.applied.labels(*labels).inc(batch.records)
        self.metrics.rows.labels(*labels, "upsert").inc(batch.upserted)
        self.metrics.rows.labels(*labels, "delete").inc(batch.deleted)
        if batch.oldest is not None:
            self.metrics.delay.labels(*labels).observe(max(0.0, applied_at - batch.oldest))
        return int(batch.records)

    def measure(self) -> None:
        """The lag of each live feed into the gauges."""
        stored = forward.read_position(self.link)
        if stored is not None and stored.position.is_active:
            lag = forward.lag(self.link)
            if lag is not None:
                self._gauge(Direction.FORWARD, lag.entries, lag.seconds)
        saved = reverse.saved_positions(self.link.monolith, self.link.feed.name)
        if any(position.is_active for position in saved.values()):
            waiting = reverse.lag(self.link)
            self._gauge(Direction.REVERSE, waiting.records, waiting.seconds)

    def _gauge(self, direction: Direction, entries: int, seconds: float) -> None:
        self.metrics.lag_entries.labels(*self._labels(direction)).set(entries)
        self.metrics.lag_seconds.labels(*self._labels(direction)).set(seconds)

    def run(self, stopping: threading.Event) -> None:
        """Apply until `stopping` is set: batches back to back while there is work."""
        measured = 0.0
        while not stopping.is_set():
            applied = self.step()
            now = time.monotonic()
            if now - measured >= self.settings.lag_seconds:
                try:
                    self.measure()
                except self.failures as error:
                    log.warning("lag failed", error=str(error).splitlines()[0])
                measured = now
            if not applied:
                stopping.wait(self.settings.poll_seconds)


def is_healthy(link: ItemsLink) -> bool:
    """The monolith's database and the context's table both answer."""
    if not can_connect(link.monolith):
        return False
    try:
        link.dynamodb.describe_table(TableName=link.table_name)
    except Exception:  # any failure means not healthy
        return False
    return True


def main(argv: Sequence[str] | None = None) -> None:
    from strangler.events.process import stop_on_signals
    from strangler.workspace import find_workspace

    parser = argparse.ArgumentParser(
        prog="python -m strangler.serverless.data.sync", description=__doc__
    )
    parser.add_argument("context", help="a context extracted to functions, e.g. polls")
    arguments = parser.parse_args(argv)
    settings = ItemsSyncSettings()
    configure_logging(f"{arguments.context}-sync", settings.log_level)
    stopping = stop_on_signals()
    link = ItemsLink.open(find_workspace(), arguments.context, settings.monolith_database_url)
    try:
        reverse.ensure_positions(link.monolith)
        metrics = SyncMetrics()
        server = None
        if settings.port is not None:
            server = serve_operations(
                settings.host, settings.port, metrics.registry, lambda: is_healthy(link)
            )
        log.info("sync started", context=arguments.context, port=settings.port)
        ItemsSyncer(link, settings, metrics).run(stopping)
        if server is not None:
            server.shutdown()
    finally:
        link.close()


if __name__ == "__main__":
    main()
