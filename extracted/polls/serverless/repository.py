"""The polls' data in DynamoDB, through boto3's low-level client: polls, votes and results.

The same domain as `extracted.polls.service` over the table of `table` (docs/serverless.md):
- a poll's options are written before the poll item, so whoever sees a poll sees all its
  options (a Query is not isolated from a transaction in flight; this order needs none);
- a vote is one conditional put of the item keyed by poll and user: a second vote of the user
  fails the condition whatever the race, and is a 409. Options never change once their poll
  exists, so checking the option against the poll just read cannot go stale;
- results are the poll's `RESULTS` item, recomputed from every vote item by `recompute` (never
  incremented), stored only if no other count was stored since it began.
Reads that decide (a poll's existence, a vote's option, a count) are strongly consistent.
This module never answers HTTP, never renders a page and never reads the environment.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from contract.requests import NewPoll, NewVote
from extracted.polls.presenters import OptionCount, OptionView, PollView, Results
from extracted.polls.serverless.table import (
    OPTION_PREFIX,
    POLL_SK,
    RESULTS_SK,
    VOTE_PREFIX,
    Item,
    from_text,
    item_of_row,
    partition,
    sequence_key,
)
from strangler.plumbing.clock import to_iso, utcnow
from strangler.plumbing.errors import Conflict, NotFound, invalid

DynamoDBClient = Any  # boto3's client("dynamodb"): botocore builds its methods at run time
BATCH = 25  # the most items one BatchWriteItem takes
RECOUNTS = 5  # counts overtaken in a row before giving the batch back to be retried


class RecountContention(RuntimeError):
    """A poll's counts kept being stored by others while this count ran."""


class Ballot(NamedTuple):
    """A vote as it was cast (a row of `votes`)."""

    id: int
    poll_id: int
    option_id: int
    user_id: int
    created_at: datetime


class PollsTable:
    """The polls context's items in one DynamoDB table."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def create_poll(self, author_id: int, request: NewPoll) -> PollView:
        poll_id = self._allocate("polls", 1)[0]
        option_ids = self._allocate("poll_options", len(request.options))
        created_at = utcnow()
        options = [
            {"id": option_id, "poll_id": poll_id, "position": position, "text": text}
            for position, (option_id, text) in enumerate(
                zip(option_ids, request.options, strict=True)
            )
        ]
        self._write_all([item_of_row("poll_options", option) for option in options])
        poll = {
            "id": poll_id,
            "question": request.question,
            "author_id": author_id,
            "created_at": created_at,
        }
        self.client.put_item(
            TableName=self.name,
            Item=item_of_row("polls", poll),
            ConditionExpression="attribute_not_exists(PK)",  # ids are never reused
        )
        views = [OptionView(option["id"], option["text"]) for option in options]
        return PollView(poll_id, request.question, views, author_id, created_at)

    def get_poll(self, poll_id: int) -> PollView:
        """The poll and its options in order (one Query), or NotFound."""
        return _poll_of(poll_id, self._query(poll_id, OPTION_PREFIX, POLL_SK))

    def vote(self, user_id: int, poll_id: int, request: NewVote) -> Ballot:
        poll = self.get_poll(poll_id)
        if request.option_id not in {option.id for option in poll.options}:
            raise invalid("option_id", f"is not an option of poll {poll_id}")
        ballot = Ballot(
            self._allocate("votes", 1)[0], poll_id, request.option_id, user_id, utcnow()
        )
        try:
            self.client.put_item(
                TableName=self.name,
                Item=item_of_row("votes", ballot._asdict()),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            raise Conflict(f"you have already voted in poll {poll_id}") from error
        return ballot

    def results(self, poll_id: int) -> Results:
        """The poll's results as last recomputed (zero counts as of its creation if never), or
        NotFound. One Query: the options, the poll and its `RESULTS` item are adjacent."""
        items = self._query(poll_id, OPTION_PREFIX, RESULTS_SK)
        poll = _poll_of(poll_id, items)
        counted = next((item for item in items if item["SK"]["S"] == RESULTS_SK), None)
        if counted is None:
            return _results(poll, Counter(), poll.created_at)
        counts = Counter({int(k): int(v["N"]) for k, v in counted["counts"]["M"].items()})
        return _results(poll, counts, from_text(counted["as_of"]["S"]))

    def recompute(self, poll_id: int) -> Results | None:
        """Count the poll's votes now and store the counts; the results stored, or None when
        there is no such poll (yet).

        Compare-and-set on the `RESULTS` item's `version`, read before the votes: a count
        stores only if no other count was stored since it began, else it counts again. So the
        counts stored last began after every count stored before them, without trusting
        clocks; the version orders writes, it counts nothing.
        """
        for _ in range(RECOUNTS):
            version = self._results_version(poll_id)
            as_of = utcnow()  # every vote acknowledged before this instant is counted below
            items = list(self._partition(poll_id))
            if not any(item["SK"]["S"] == POLL_SK for item in items):
                return None  # its options arrived first; the poll's own record will come
            poll = _poll_of(poll_id, items)
            votes = Counter(
                int(item["option_id"]["N"])
                for item in items
                if item["SK"]["S"].startswith(VOTE_PREFIX)
            )
            results = _results(poll, votes, as_of)
            if self._store_results(results, version):
                return results
        raise RecountContention(f"poll {poll_id}: {RECOUNTS} counts in a row were overtaken")

    def _results_version(self, poll_id: int) -> int:
        """The version of the poll's stored counts, 0 if none is stored."""
        answer = self.client.get_item(
            TableName=self.name,
            Key={"PK": {"S": partition(poll_id)}, "SK": {"S": RESULTS_SK}},
            ProjectionExpression="#version",
            ExpressionAttributeNames={"#version": "version"},
            ConsistentRead=True,
        )
        return int(answer.get("Item", {}).get("version", {}).get("N", 0))

    def _store_results(self, results: Results, version: int) -> bool:
        """Store `results` as the version after `version`, unless that is not the stored one."""
        try:
            self.client.put_item(
                TableName=self.name,
                Item={**_results_item(results), "version": {"N": str(version + 1)}},
                # Version 0 is "none stored": no stored item has it.
                ConditionExpression="attribute_not_exists(#version) OR #version = :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def is_reachable(self) -> bool:
        try:
            self.client.describe_table(TableName=self.name)
        except (BotoCoreError, ClientError):
            return False
        return True

    def _allocate(self, table: str, count: int) -> list[int]:
        """`count` new ids of `table`'s sequence (one atomic counter item per SQL table)."""
        answer = self.client.update_item(
            TableName=self.name,
            Key=sequence_key(table),
            UpdateExpression="ADD #last :count",
            ExpressionAttributeNames={"#last": "last"},
            ExpressionAttributeValues={":count": {"N": str(count)}},
            ReturnValues="UPDATED_NEW",
        )
        last = int(answer["Attributes"]["last"]["N"])
        return list(range(last - count + 1, last + 1))

    def _write_all(self, items: list[Item]) -> None:
        for start in range(0, len(items), BATCH):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH]]
            pending: dict[str, Any] = {self.name: requests}
            for attempt in itertools.count():
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off, as AWS advises

    def _query(self, poll_id: int, first: str, last: str) -> list[Item]:
        """The poll's items whose sort keys are between `first` and `last` (a few, one page)."""
        answer = self.client.query(
            TableName=self.name,
            KeyConditionExpression="PK = :poll AND SK BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":poll": {"S": partition(poll_id)},
                ":first": {"S": first},
                ":last": {"S": last},
            },
            ConsistentRead=True,
        )
        return list(answer["Items"])

    def _partition(self, poll_id: int) -> Iterator[Item]:
        """Every item of the poll, page after page."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "PK = :poll",
            "ExpressionAttributeValues": {":poll": {"S": partition(poll_id)}},
            "ConsistentRead": True,
        }
        while True:
            answer = self.client.query(**arguments)
            yield from answer["Items"]
            if "LastEvaluatedKey" not in answer:
                return
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _poll_of(poll_id: int, items: list[Item]) -> PollView:
    """The poll of a Query's items (options sort before it), or NotFound."""
    poll = next((item for item in items if item["SK"]["S"] == POLL_SK), None)
    if poll is None:
        raise NotFound(f"poll {poll_id} does not exist")
    options = [
        OptionView(int(item["id"]["N"]), item["text"]["S"])
        for item in items
        if item["SK"]["S"].startswith(OPTION_PREFIX)
    ]
    return PollView(
        poll_id,
        poll["question"]["S"],
        options,
        int(poll["author_id"]["N"]),
        from_text(poll["created_at"]["S"]),
    )


def _results(poll: PollView, votes: Counter[int], as_of: datetime) -> Results:
    options = [OptionCount(option.id, option.text, votes[option.id]) for option in poll.options]
    return Results(poll.id, poll.question, sum(o.votes for o in options), options, as_of)


def _results_item(results: Results) -> Item:
    return {
        "PK": {"S": partition(results.poll_id)},
        "SK": {"S": RESULTS_SK},
        "poll_id": {"N": str(results.poll_id)},
        "counts": {"M": {str(o.id): {"N": str(o.votes)} for o in results.options}},
        "total": {"N": str(results.total)},
        "as_of": {"S": to_iso(results.as_of)},
    }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
