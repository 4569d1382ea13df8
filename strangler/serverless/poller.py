"""The stream poller: the local equivalent of Lambda's DynamoDB event source mapping.

One process per serverless context (`python -m strangler.serverless.poller`). It first
provisions the context's table and bucket (`provision`, idempotent), then reads every shard of
the table's stream (DescribeStream, GetShardIterator from TRIM_HORIZON or AFTER_SEQUENCE_NUMBER
of its checkpoint, GetRecords) and invokes the context's stream handler with batches
`{"Records": [...]}` in Lambda's record shape, shard by shard in order; a handler may answer
Lambda's partial batch response (`batchItemFailures`): the records before the first failed one
count as handled, the rest is read again. The last sequence
number of each shard is checkpointed in a file of the system's state folder, written and
fsynced only after the handler returned: a batch is delivered at least once and no record is
ever skipped; a failed batch is retried from its checkpoint with a growing pause. `/healthz`
answers once provisioned, `/metrics` has the lag, the batches and the failures. This module
must never write to the table or the bucket beyond creating them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler.datapath.operations import serve_operations
from strangler.plumbing.durable import replace_durably
from strangler.plumbing.imports import resolve
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.serverless.emulator import DEFAULT_REGION
from strangler.serverless.provision import client, provision

log = get_logger("stream-poller")
Handler = Callable[[dict[str, Any], Any], Any]


class PollerSettings(BaseSettings):
    """One poller process; `strangler up` sets every variable (runtime/plan.py)."""

    model_config = SettingsConfigDict(env_prefix="POLLER_", extra="ignore")

    context: str
    stream_handler: str | None = None  # import path; None: provision only
    table_definition: str | None = None  # import path to create_table's arguments
    bucket: str | None = None
    checkpoint_path: Path
    endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("POLLER_ENDPOINT", "AWS_ENDPOINT_URL")
    )
    host: str = "127.0.0.1"
    port: int | None = None
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    idle_seconds: Annotated[float, Field(gt=0)] = 0.2
    retry_first_seconds: Annotated[float, Field(gt=0)] = 0.2
    retry_max_seconds: Annotated[float, Field(gt=0)] = 5.0
    log_level: str = "INFO"


class Checkpoints:
    """The last sequence number handled per shard, in one JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions: dict[str, str] = (
            json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        )

    def save(self, shard: str, sequence: str) -> None:
        self.positions[shard] = sequence
        replace_durably(self.path, json.dumps(self.positions))


class PollerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches = Counter(
            "stream_poller_batches_total", "Batches the handler took", ["context"],
            registry=self.registry,
        )  # fmt: skip
        self.records = Counter(
            "stream_poller_records_total", "Records delivered", ["context"], registry=self.registry
        )
        self.failures = Counter(
            "stream_poller_failures_total",
            "Failed batches (handler) and failed reads (stream), each retried",
            ["context", "reason"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "stream_poller_lag_seconds",
            "Age of the oldest record read but not yet handled (0: caught up)",
            ["context"],
            registry=self.registry,
        )


class HandlerFailed(Exception):
    """The stream handler raised; its batch will be read again."""


@dataclass
class StreamInvocation:
    """The context object a stream handler gets."""

    function_name: str
    aws_request_id: str
    deadline: float = field(default_factory=lambda: time.time() + 900)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands a function (JSON-able)."""
    shaped = _jsonable(record)
    shaped.setdefault("eventVersion", "1.1")
    shaped.setdefault("eventSource", "aws:dynamodb")
    shaped.setdefault("awsRegion", region)
    shaped["eventSourceARN"] = stream_arn
    return shaped


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    return value


class StreamPoller:
    """Reads a table's stream and hands its records to `handler`, at least once each."""

    def __init__(
        self,
        context: str,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        checkpoints: Checkpoints,
        metrics: PollerMetrics,
        batch_size: int = 100,
        retry: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.context = context
        self.streams = streams
        self.stream_arn = stream_arn
        self.handler = handler
        self.checkpoints = checkpoints
        self.metrics = metrics
        self.batch_size = batch_size
        self.retry_first, self.retry_max = retry
        self.region = streams.meta.region_name or DEFAULT_REGION
        self._iterators: dict[str, str | None] = {}
        self._pause = 0.0

    def shards(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        options: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            described = self.streams.describe_stream(**options)["StreamDescription"]
            found.extend(described.get("Shards", []))
            last = described.get("LastEvaluatedShardId")
            if not last:
                return found
            options["ExclusiveStartShardId"] = last

    def _iterator(self, shard: str) -> str | None:
        if shard in self._iterators:
            return self._iterators[shard]
        position = self.checkpoints.positions.get(shard)
        options: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard}
        if position is None:
            options["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            options.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=position)
        iterator: str | None = self.streams.get_shard_iterator(**options)["ShardIterator"]
        self._iterators[shard] = iterator
        return iterator

    def step(self) -> int:
        """One pass over every shard: records handled (0: nothing new). Raises nothing a
        retry would not fix: a failure is counted, logged and paused on."""
        handled = 0
        try:
            for shard in self.shards():
                handled += self._shard_step(shard["ShardId"])
        except HandlerFailed:
            return handled
        except Exception as error:  # the stream's read failed: retry from the checkpoints
            self.metrics.failures.labels(self.context, "read").inc()
            log.warning("stream read failed", context=self.context, error=repr(error))
            self._iterators.clear()
            self._back_off()
        return handled

    def _shard_step(self, shard: str) -> int:
        iterator = self._iterator(shard)
        if iterator is None:
            return 0  # a closed shard read to its end
        answer = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
        records = answer.get("Records", [])
        if not records:
            self._iterators[shard] = answer.get("NextShardIterator")
            self.metrics.lag.labels(self.context).set(0)
            return 0
        oldest = records[0]["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(oldest, datetime):
            self.metrics.lag.labels(self.context).set(max(0.0, time.time() - oldest.timestamp()))
        batch = [lambda_record(record, self.stream_arn, self.region) for record in records]
        last = records[-1]["dynamodb"]["SequenceNumber"]
        try:
            outcome = self.handler({"Records": batch}, StreamInvocation(self.context, last))
        except Exception as error:  # the handler's failure: retry the same batch
            self._failed(shard, len(batch), repr(error))
            raise HandlerFailed() from error
        failed_at = first_failure(outcome)
        if failed_at is not None:
            sequences = [record["dynamodb"]["SequenceNumber"] for record in records]
            done = [sequence for sequence in sequences if int(sequence) < int(failed_at)]
            if done:
                self.checkpoints.save(shard, done[-1])
            self._failed(shard, len(batch) - len(done), f"batch item failure at {failed_at}")
            raise HandlerFailed()
        self.checkpoints.save(shard, last)
        self._iterators[shard] = answer.get("NextShardIterator")
        self.metrics.batches.labels(self.context).inc()
        self.metrics.records.labels(self.context).inc(len(batch))
        self._pause = 0.0
        return len(batch)

    def _failed(self, shard: str, records: int, why: str) -> None:
        """A batch (or its tail from a reported item) to read again, after a pause."""
        self.metrics.failures.labels(self.context, "handler").inc()
        log.warning("stream batch failed; retrying", context=self.context, shard=shard,
                    records=records, error=why)  # fmt: skip
        self._iterators.pop(shard, None)
        self._back_off()

    def _back_off(self) -> None:
        self._pause = min(self.retry_max, max(self.retry_first, self._pause * 2))
        time.sleep(self._pause)

    def run(self, stopping: threading.Event, idle_seconds: float) -> None:
        while not stopping.is_set():
            if self.step() == 0:
                stopping.wait(idle_seconds)


def first_failure(answer: Any) -> str | None:
    """The sequence number a partial batch response (`{"batchItemFailures": [{"itemIdentifier":
    SEQUENCE}]}`, Lambda's ReportBatchItemFailures) asks to be retried from, or None."""
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures") or []
    identifiers = [str(item.get("itemIdentifier")) for item in failures if isinstance(item, dict)]
    numbers = [identifier for identifier in identifiers if identifier.isdigit()]
    return min(numbers, key=int) if numbers else None


def main() -> None:
    from strangler.events.process import stop_on_signals

    settings = PollerSettings()  # type: ignore[call-arg]  # required fields come from the env
    configure_logging(f"{settings.context}-stream-poller", settings.log_level)
    metrics = PollerMetrics()
    ready = threading.Event()
    server = None
    if settings.port is not None:
        server = serve_operations(settings.host, settings.port, metrics.registry, ready.is_set)
    stopping = stop_on_signals()
    definition = resolve(settings.table_definition) if settings.table_definition else None
    provisioned = provision(settings.endpoint, definition, settings.bucket)
    log.info("provisioned", context=settings.context, table=provisioned.table,
             table_created=provisioned.table_created, bucket=provisioned.bucket,
             bucket_created=provisioned.bucket_created, endpoint=settings.endpoint)  # fmt: skip
    ready.set()
    if settings.stream_handler is not None and provisioned.stream_arn is not None:
        poller = StreamPoller(
            settings.context,
            client("dynamodbstreams", settings.endpoint),
            provisioned.stream_arn,
            resolve(settings.stream_handler),
            Checkpoints(settings.checkpoint_path),
            metrics,
            settings.batch_size,
            (settings.retry_first_seconds, settings.retry_max_seconds),
        )
        log.info("polling the stream", context=settings.context, stream=provisioned.stream_arn)
        poller.run(stopping, settings.idle_seconds)
    else:
        stopping.wait()
    if server is not None:
        server.shutdown()


if __name__ == "__main__":
    main()
