"""The results function: DynamoDB Streams records in, each changed poll's results and page out.

A batch names polls through the keys of its records (a vote, an option or a poll item
changed); the records' images are not needed, which is what makes redelivery, replay and
reordering harmless: each poll named is recounted from its vote items once per batch
(`PollsTable.recompute`), then its page is written. Our own `RESULTS` writes come back on the
stream and are skipped, or each count would trigger the next.

Two invocations recounting one poll at once (not the event source mapping's habit: a poll's
items share a partition key, so a shard) could put their pages in the wrong order. So after a
put the publisher reads the stored counts again and, when a later count has landed, puts that
page too: the last page put is checked after it was put.

A poll that fails is reported in Lambda's partial batch response (its first record's sequence
number), so the batch is retried from there; polls recounted before it are recounted again,
harmlessly. This module never answers HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from extracted.polls.presenters import Results
from extracted.polls.serverless.table import RESULTS_SK, poll_id_of
from strangler.plumbing.logs import get_logger

log = get_logger("results")

# Rereads after a put; past this a poll is voted on so fast that its next vote's batch follows.
REREADS = 5

Record = Mapping[str, Any]  # a DynamoDB Streams record, as Lambda (or GetRecords) gives it


def changed_polls(records: Iterable[Record]) -> dict[int, str]:
    """Each poll the records change, with the sequence number of its first record."""
    polls: dict[int, str] = {}
    for record in records:
        keys = record["dynamodb"]["Keys"]
        poll_id = poll_id_of(keys["PK"]["S"])
        if poll_id is None or keys["SK"]["S"] == RESULTS_SK:
            continue  # a sequence counter, or a count we wrote
        polls.setdefault(poll_id, record["dynamodb"]["SequenceNumber"])
    return polls


class Counts(Protocol):
    """Where votes are counted and counts kept (`repository.PollsTable`)."""

    def recompute(self, poll_id: int) -> Results | None: ...

    def results(self, poll_id: int) -> Results: ...


class Pages(Protocol):
    """Where the pages go (`bucket.BucketPages`)."""

    def write(self, results: Results) -> None: ...


class ResultsPublisher:
    """Recounts the polls a batch of records names and writes their pages."""

    def __init__(self, table: Counts, pages: Pages) -> None:
        self.table = table
        self.pages = pages

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Lambda's stream handler: every poll recounted, or the first failed one reported."""
        failed: list[str] = []
        for poll_id, first_record in changed_polls(event.get("Records", [])).items():
            try:
                self.publish(poll_id)
            except Exception:
                log.exception("results not published", poll_id=poll_id)
                failed.append(first_record)
        earliest = min(failed, key=int, default=None)
        failures = [] if earliest is None else [{"itemIdentifier": earliest}]
        return {"batchItemFailures": failures}

    def publish(self, poll_id: int) -> None:
        """Recount the poll and write its page; put the stored counts' page while they are not
        the ones just put (another count was stored meanwhile)."""
        results = self.table.recompute(poll_id)
        if results is None:
            return  # no poll yet: its own record will come
        for _ in range(REREADS):
            self.pages.write(results)
            stored = self.table.results(poll_id)
            if stored == results:
                log.info("results published", poll_id=poll_id, total=results.total)
                return
            results = stored
        log.warning("results page may trail its counts", poll_id=poll_id)
