"""The results function's logic in process: which records name which polls, and the rule that
the last page put shows the last count stored, against small working fakes of the table and
the bucket (`stream.Counts`, `stream.Pages`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from extracted.polls.presenters import OptionCount, Results
from extracted.polls.serverless.stream import ResultsPublisher, changed_polls

T0 = datetime(2026, 1, 1, 12, 0, 0)


def results(total: int, seconds: int) -> Results:
    options = [OptionCount(1, "yes", total), OptionCount(2, "no", 0)]
    return Results(7, "Yes?", total, options, T0 + timedelta(seconds=seconds))


class CountsKept:
    """Counts as a table keeps them: `recompute` stores a count; another writer may store a
    later one right after (`later`), as a concurrent invocation would."""

    def __init__(self, counted: Results | None, later: list[Results]) -> None:
        self.counted = counted
        self.later = later
        self.stored: Results | None = None

    def recompute(self, poll_id: int) -> Results | None:
        self.stored = self.counted
        return self.counted

    def results(self, poll_id: int) -> Results:
        if self.later:
            self.stored = self.later.pop(0)
        assert self.stored is not None
        return self.stored


class PagesKept:
    def __init__(self) -> None:
        self.written: list[Results] = []

    def write(self, results: Results) -> None:
        self.written.append(results)


def record(partition: str, sort: str, sequence: int) -> dict[str, Any]:
    keys = {"PK": {"S": partition}, "SK": {"S": sort}}
    return {"eventName": "INSERT", "dynamodb": {"Keys": keys, "SequenceNumber": str(sequence)}}


def test_records_name_each_changed_poll_once_with_its_first_sequence_number() -> None:
    records = [
        record("POLL#3", "VOTE#1", 10),
        record("SEQUENCE#votes", "SEQUENCE", 11),
        record("POLL#4", "RESULTS", 12),
        record("POLL#4", "OPTION#0000", 13),
        record("POLL#3", "VOTE#2", 14),
    ]
    assert changed_polls(records) == {3: "10", 4: "13"}


def test_our_own_counts_trigger_nothing() -> None:
    table = CountsKept(results(1, 0), [])
    pages = PagesKept()
    answer = ResultsPublisher(table, pages).handle({"Records": [record("POLL#7", "RESULTS", 1)]})
    assert (answer, pages.written) == ({"batchItemFailures": []}, [])


def test_a_page_is_put_again_when_a_later_count_landed_meanwhile() -> None:
    table = CountsKept(results(1, 0), [results(2, 1)])
    pages = PagesKept()
    ResultsPublisher(table, pages).publish(7)
    assert [page.total for page in pages.written] == [1, 2]


def test_a_poll_whose_item_is_not_written_yet_gets_no_page() -> None:
    pages = PagesKept()
    ResultsPublisher(CountsKept(None, []), pages).publish(7)
    assert pages.written == []
