"""The Redis Streams bus: one stream per source, one consumer group per subscription.

`publish` appends a source's events to `<prefix>events:<source>` in one MULTI/EXEC. A
subscription is a consumer group read by one consumer of the same name; what it received and
did not acknowledge stays in the group's pending list and is delivered again first (after a
crash, too). A relay that republishes after a crash appends duplicates, which consumers drop
by event id. The URL may carry `?prefix=` to keep several systems (or tests) apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from strangler.events.bus import Delivery, decode_event, encode_event, source_of
from strangler.events.outbox import Event

DEFAULT_PREFIX = "strangler:"


def _split_prefix(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisBus:
    """The `Bus` over Redis Streams (XADD, XREADGROUP, XACK)."""

    def __init__(self, url: str) -> None:
        plain_url, self.prefix = _split_prefix(url)
        self.client: Any = redis.Redis.from_url(plain_url, decode_responses=True)

    def stream(self, source: str) -> str:
        return f"{self.prefix}events:{source}"

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self.client.pipeline(transaction=True) as pipeline:
            for event in events:
                pipeline.xadd(self.stream(source_of(event.id)), {"event": encode_event(event)})
            pipeline.execute()

    def subscribe(self, consumer: str, sources: Sequence[str]) -> None:
        for source in sources:
            try:
                self.client.xgroup_create(self.stream(source), consumer, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def receive(
        self, consumer: str, sources: Sequence[str], limit: int, wait_seconds: float
    ) -> list[Delivery]:
        streams = [self.stream(source) for source in sources]
        # Pending entries (delivered before, never acknowledged) come first, in order.
        pending = self._read(consumer, dict.fromkeys(streams, "0"), limit, None)
        if pending:
            return pending
        block = max(1, int(wait_seconds * 1000))
        return self._read(consumer, dict.fromkeys(streams, ">"), limit, block)

    def _read(
        self, consumer: str, streams: dict[str, str], limit: int, block: int | None
    ) -> list[Delivery]:
        answer = self.client.xreadgroup(consumer, consumer, streams, count=limit, block=block)
        deliveries = []
        for stream, entries in answer or []:
            for entry_id, fields in entries:
                if fields and "event" in fields:
                    deliveries.append(
                        Delivery(decode_event(fields["event"]), f"{stream}|{entry_id}")
                    )
                else:  # an entry trimmed away while pending: nothing left to deliver
                    self.client.xack(stream, consumer, entry_id)
        return deliveries

    def acknowledge(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        by_stream: dict[str, list[str]] = {}
        for delivery in deliveries:
            stream, _, entry_id = delivery.receipt.partition("|")
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, entry_ids in by_stream.items():
            self.client.xack(stream, consumer, *entry_ids)

    def lag(self, consumer: str, sources: Sequence[str]) -> int:
        total = 0
        for source in sources:
            for group in self.client.xinfo_groups(self.stream(source)):
                if group["name"] == consumer:
                    total += int(group.get("lag") or 0) + int(group.get("pending") or 0)
        return total

    def rewind(self, consumer: str, sources: Sequence[str]) -> None:
        self.subscribe(consumer, sources)
        for source in sources:
            self.client.xgroup_setid(self.stream(source), consumer, id="0")

    def close(self) -> None:
        self.client.close()
