"""The polls functions end to end against moto: `handler` driven with API Gateway payload 2.0
events through the contract's polls cases, `on_stream` fed with the records moto's DynamoDB
Streams returns, the items, the counts and the pages in the emulated table and bucket.

Emulated, not AWS: see docs/serverless.md for what this does not prove.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from extracted.polls import models as service_models
from extracted.polls.serverless import handler, on_stream
from extracted.polls.serverless.bucket import BucketPages
from extracted.polls.serverless.repository import PollsTable
from extracted.polls.serverless.stream import ResultsPublisher
from extracted.polls.serverless.table import COLUMNS, partition, row_of_item
from monolith import models as monolith_models
from strangler.plumbing.errors import MAX_BODY_BYTES
from strangler.plumbing.tokens import TokenSigner
from tests.contract.conformance import conformance
from tests.serverless.conftest import Emulated
from tests.serverless.events import Answer, http_event
from tests.support.servers import TEST_TOKEN_SECRET

SIGNER = TokenSigner(TEST_TOKEN_SECRET)
PROBLEM = "application/problem+json"
NAMES = ("Cats", "Dogs", "&lt;b&gt;Birds&lt;/b&gt;")  # as the page shows them, escaped
OPTION_LINE = re.compile(r"<div>(.*?): <strong>(\d+)</strong></div>")


def call(
    method: str,
    target: str,
    user_id: int | None = None,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Answer:
    """`handler`'s answer to `method target`, with a token of `user_id` if given."""
    sent = dict(headers or {})
    if user_id is not None:
        sent["authorization"] = f"Bearer {SIGNER.issue(user_id)}"
    return invoke(http_event(method, target, headers=sent, **body))


def invoke(event: dict[str, Any]) -> Answer:
    """`handler`'s answer to `event`, checked against docs/openapi.yaml as the contract suite
    checks every response it receives."""
    answer = Answer.of(handler(event, None))
    http = event["requestContext"]["http"]
    request = httpx.Request(http["method"], f"http://polls.local{http['path']}")
    conformance().check(
        httpx.Response(answer.status, headers=answer.headers, content=answer.body, request=request)
    )
    return answer


def create_poll(author_id: int = 1, options: list[str] | None = None) -> dict[str, Any]:
    document = {"question": "Best editor?", "options": options or ["vim", "emacs"]}
    answer = call("POST", "/api/polls", author_id, json_body=document)
    assert answer.status == 201, answer.body
    return dict(answer.json())


def vote(poll_id: int, option_id: int, user_id: int) -> Answer:
    return call("POST", f"/api/polls/{poll_id}/votes", user_id, json_body={"option_id": option_id})


def deliver(aws: Emulated) -> list[dict[str, Any]]:
    """Hand the stream's new records to the results function, as the event source would."""
    records = aws.stream.read()
    assert on_stream({"Records": records}, None) == {"batchItemFailures": []}
    return records


def counts(poll_id: int) -> dict[int, int]:
    results = call("GET", f"/api/polls/{poll_id}/results").json()
    return {option["id"]: option["votes"] for option in results["options"]}


def page_in_bucket(aws: Emulated, poll_id: int) -> tuple[str, str]:
    page = aws.s3.get_object(Bucket=aws.bucket, Key=f"results/{poll_id}.html")
    return page["ContentType"], page["Body"].read().decode()


class TestPolls:
    def test_a_member_creates_a_poll_and_reads_it(self, aws: Emulated) -> None:
        answer = call(
            "POST",
            "/api/polls",
            7,
            json_body={"question": "Best editor?", "options": ["vim", "emacs", "nano"]},
            headers={"X-Request-ID": "req-polls-1"},
        )
        assert answer.status == 201
        assert answer.headers["x-request-id"] == "req-polls-1"
        poll = answer.json()
        assert (poll["question"], poll["author_id"]) == ("Best editor?", 7)
        assert [option["text"] for option in poll["options"]] == ["vim", "emacs", "nano"]
        assert len({option["id"] for option in poll["options"]}) == 3
        assert call("GET", f"/api/polls/{poll['id']}").json() == poll

    @pytest.mark.parametrize(
        ("document", "field"),
        [
            ({"question": "One?", "options": ["only"]}, "options"),
            ({"question": "Same?", "options": ["yes", "yes"]}, "options"),
            ({"question": "", "options": ["a", "b"]}, "question"),
            ({"question": "Numbers?", "options": [1, 2]}, "options.0"),
        ],
    )
    def test_an_invalid_poll_is_a_validation_error_and_creates_nothing(
        self, aws: Emulated, document: dict[str, Any], field: str
    ) -> None:
        probe = create_poll()
        answer = call("POST", "/api/polls", 1, json_body=document)
        assert (answer.status, answer.headers["content-type"]) == (422, PROBLEM)
        assert field in [error["field"] for error in answer.json()["errors"]]
        assert call("GET", f"/api/polls/{probe['id'] + 1}").status == 404

    def test_a_body_that_is_not_json_is_a_bad_request(self, aws: Emulated) -> None:
        answer = call("POST", "/api/polls", 1, raw_body=b"{not json")
        assert (answer.status, answer.headers["content-type"]) == (400, PROBLEM)

    def test_a_body_over_the_limit_is_too_large(self, aws: Emulated) -> None:
        answer = call("POST", "/api/polls", 1, raw_body=b" " * (MAX_BODY_BYTES + 1))
        assert (answer.status, answer.headers["content-type"]) == (413, PROBLEM)

    @pytest.mark.parametrize("authorization", [None, "Bearer forged.token.here"])
    def test_creating_a_poll_without_a_valid_token_is_unauthorized(
        self, aws: Emulated, authorization: str | None
    ) -> None:
        headers = {"authorization": authorization} if authorization else {}
        event = http_event(
            "POST",
            "/api/polls",
            json_body={"question": "q", "options": ["a", "b"]},
            headers=headers,
        )
        answer = invoke(event)
        assert (answer.status, answer.headers["content-type"]) == (401, PROBLEM)

    @pytest.mark.parametrize(
        "target",
        [
            "/api/polls/999999999999",
            "/api/polls/999999999999/results",
            "/results/999999999999.html",
        ],
    )
    def test_an_unknown_poll_is_not_found(self, aws: Emulated, target: str) -> None:
        answer = call("GET", target)
        assert (answer.status, answer.headers["content-type"]) == (404, PROBLEM)

    def test_the_function_serves_exactly_the_polls_paths_of_the_contract(
        self, aws: Emulated
    ) -> None:
        tagged: dict[str, set[str]] = {}
        for path, operations in conformance().document["paths"].items():
            for operation in operations.values():
                if isinstance(operation, dict):
                    for tag in operation.get("tags", []):
                        tagged.setdefault(tag, set()).add(path)
        served = Answer.of(handler(http_event("GET", "/openapi.json"), None)).json()["paths"]
        assert set(served) == tagged["polls"] | tagged["operations"]
        assert len(tagged["polls"]) == 5


class TestVotes:
    def test_a_vote_is_accepted(self, aws: Emulated) -> None:
        poll = create_poll()
        option_id = poll["options"][1]["id"]
        answer = vote(poll["id"], option_id, 2)
        assert answer.status == 201
        assert answer.json() == {"poll_id": poll["id"], "option_id": option_id, "user_id": 2}

    def test_second_vote_is_a_conflict(self, aws: Emulated) -> None:
        poll = create_poll()
        first, second = (option["id"] for option in poll["options"])
        assert vote(poll["id"], first, 3).status == 201
        answer = vote(poll["id"], second, 3)
        assert (answer.status, answer.headers["content-type"]) == (409, PROBLEM)
        assert answer.json()["type"] == "urn:strangler:problem:conflict"
        deliver(aws)
        assert counts(poll["id"]) == {first: 1, second: 0}

    def test_an_option_of_another_poll_is_a_validation_error(self, aws: Emulated) -> None:
        poll, other = create_poll(), create_poll()
        answer = vote(poll["id"], other["options"][0]["id"], 4)
        assert answer.status == 422
        assert [error["field"] for error in answer.json()["errors"]] == ["option_id"]
        assert vote_items(aws, poll["id"]) == []

    @pytest.mark.parametrize("option_id", [0, "1", None])
    def test_an_option_id_that_is_not_a_positive_integer_is_a_validation_error(
        self, aws: Emulated, option_id: object
    ) -> None:
        poll = create_poll()
        answer = call(
            "POST", f"/api/polls/{poll['id']}/votes", 4, json_body={"option_id": option_id}
        )
        assert (answer.status, answer.headers["content-type"]) == (422, PROBLEM)

    def test_voting_in_an_unknown_poll_is_not_found(self, aws: Emulated) -> None:
        assert vote(999999999999, 1, 5).status == 404

    def test_voting_without_a_token_is_unauthorized(self, aws: Emulated) -> None:
        poll = create_poll()
        event = http_event(
            "POST",
            f"/api/polls/{poll['id']}/votes",
            json_body={"option_id": poll["options"][0]["id"]},
        )
        assert invoke(event).status == 401
        assert vote_items(aws, poll["id"]) == []

    def test_concurrent_votes_of_one_user_are_accepted_once(self, aws: Emulated) -> None:
        poll = create_poll(options=["a", "b", "c"])
        options = [option["id"] for option in poll["options"]]
        statuses = in_threads(8, lambda n: vote(poll["id"], options[n % 3], 6).status)
        assert sorted(statuses) == [201] + [409] * 7
        assert len(vote_items(aws, poll["id"])) == 1


class TestResults:
    def test_a_new_poll_has_no_votes_and_a_page_before_its_record_arrives(
        self, aws: Emulated
    ) -> None:
        poll = create_poll(options=["Cats", "Dogs"])
        results = call("GET", f"/api/polls/{poll['id']}/results").json()
        assert (results["total"], [o["votes"] for o in results["options"]]) == (0, [0, 0])
        page = call("GET", f"/results/{poll['id']}.html")
        assert (page.status, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert shown(page.text) == {"Cats": 0, "Dogs": 0}

    def test_votes_show_in_the_results_and_on_the_page_in_the_bucket(self, aws: Emulated) -> None:
        poll = create_poll(options=["Cats", "Dogs", "<b>Birds</b>"])
        cats, dogs, birds = (option["id"] for option in poll["options"])
        deliver(aws)
        assert shown(page_in_bucket(aws, poll["id"])[1]) == dict.fromkeys(NAMES, 0)
        for user_id, choice in ((11, dogs), (12, dogs), (13, cats)):
            assert vote(poll["id"], choice, user_id).status == 201
        deliver(aws)  # the votes' records alone
        assert counts(poll["id"]) == {cats: 1, dogs: 2, birds: 0}
        content_type, page = page_in_bucket(aws, poll["id"])
        assert content_type == "text/html; charset=utf-8"
        assert shown(page) == dict(zip(NAMES, (1, 2, 0), strict=True))
        assert "3 votes" in page and "<b>Birds</b>" not in page
        assert call("GET", f"/results/{poll['id']}.html").text == page

    def test_redelivered_and_reordered_records_give_the_same_results(self, aws: Emulated) -> None:
        poll = create_poll()
        first, second = (option["id"] for option in poll["options"])
        for user_id, choice in ((21, first), (22, second), (23, second)):
            vote(poll["id"], choice, user_id)
        records = deliver(aws)
        once = counts(poll["id"])
        for batch in (records, list(reversed(records)), records[:1]):
            assert on_stream({"Records": batch}, None) == {"batchItemFailures": []}
            assert counts(poll["id"]) == once == {first: 1, second: 2}
        assert shown(page_in_bucket(aws, poll["id"])[1]) == {"vim": 1, "emacs": 2}

    def test_counts_read_back_equal_the_counts_stored(self, aws: Emulated) -> None:
        # The publisher stops re-putting a page when they do (`ResultsPublisher.publish`).
        poll = create_poll()
        vote(poll["id"], poll["options"][1]["id"], 26)
        table = PollsTable(aws.dynamodb, aws.table)
        stored = table.recompute(poll["id"])
        assert stored is not None and stored.total == 1
        assert table.results(poll["id"]) == stored

    def test_a_count_overtaken_by_another_counts_again(self, aws: Emulated) -> None:
        poll = create_poll()
        first, second = (option["id"] for option in poll["options"])
        vote(poll["id"], first, 24)

        def another_count() -> None:  # a vote lands and another recount stores it
            vote(poll["id"], second, 25)
            PollsTable(aws.dynamodb, aws.table).recompute(poll["id"])

        racing = PollsTable(RacingClient(aws.dynamodb, another_count), aws.table)
        results = racing.recompute(poll["id"])
        assert results is not None and results.total == 2
        assert counts(poll["id"]) == {first: 1, second: 1}
        stored = next(i for i in partition_items(aws, poll["id"]) if i["SK"]["S"] == "RESULTS")
        assert stored["version"] == {"N": "2"}  # the other count, then ours counted again

    def test_a_poll_that_cannot_be_published_is_reported_from_its_first_record(
        self, aws: Emulated
    ) -> None:
        aws.stream.read()  # earlier tests' records: this batch is this poll's alone
        poll = create_poll()
        vote(poll["id"], poll["options"][0]["id"], 31)
        records = aws.stream.read()
        table = PollsTable(aws.dynamodb, aws.table)
        unpublishable = ResultsPublisher(table, BucketPages(aws.s3, "no-such-bucket"))
        own = [r for r in records if r["dynamodb"]["Keys"]["PK"]["S"] == partition(poll["id"])]
        first = min(int(r["dynamodb"]["SequenceNumber"]) for r in own)
        answer = unpublishable.handle({"Records": records})
        assert answer == {"batchItemFailures": [{"itemIdentifier": str(first)}]}


class TestItems:
    def test_every_item_of_a_row_carries_its_table_and_every_column(self, aws: Emulated) -> None:
        poll = create_poll()
        vote(poll["id"], poll["options"][0]["id"], 41)
        tables: dict[str, list[dict[str, Any]]] = {}
        for item in partition_items(aws, poll["id"]):
            if "table" in item:
                name, row = row_of_item(item)
                tables.setdefault(name, []).append(row)
        assert sorted(tables) == ["poll_options", "polls", "votes"]
        for name, rows in tables.items():
            for metadata in (service_models.Base.metadata, monolith_models.Base.metadata):
                assert set(COLUMNS[name]) == set(metadata.tables[name].columns.keys())
            assert all(set(row) == set(COLUMNS[name]) for row in rows)
        assert tables["polls"][0]["id"] == poll["id"]

    def test_ids_continue_from_a_sequence_set_by_a_copy(self, aws: Emulated) -> None:
        aws.dynamodb.put_item(
            TableName=aws.table,
            Item={"PK": {"S": "SEQUENCE#polls"}, "SK": {"S": "SEQUENCE"}, "last": {"N": "5000"}},
        )
        assert create_poll()["id"] == 5001


def shown(page: str) -> dict[str, int]:
    """Each option's count as the page prints it (`text: <strong>votes</strong>`)."""
    return {text: int(votes) for text, votes in OPTION_LINE.findall(page)}


def partition_items(aws: Emulated, poll_id: int) -> list[dict[str, Any]]:
    answer = aws.dynamodb.query(
        TableName=aws.table,
        KeyConditionExpression="PK = :poll",
        ExpressionAttributeValues={":poll": {"S": partition(poll_id)}},
        ConsistentRead=True,
    )
    return list(answer["Items"])


def vote_items(aws: Emulated, poll_id: int) -> list[dict[str, Any]]:
    return [item for item in partition_items(aws, poll_id) if item["SK"]["S"].startswith("VOTE#")]


class RacingClient:
    """boto3's DynamoDB client, running `meanwhile` once, right after the first Query of a
    poll's whole partition (a recount reading the votes) answers."""

    def __init__(self, client: Any, meanwhile: Callable[[], None]) -> None:
        self.client = client
        self.meanwhile: Callable[[], None] | None = meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def query(self, **arguments: Any) -> Any:
        answer = self.client.query(**arguments)
        if self.meanwhile is not None and arguments["KeyConditionExpression"] == "PK = :poll":
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return answer


def in_threads(count: int, work: Callable[[int], int]) -> list[int]:
    """Run `work(n)` in `count` threads released at once; each thread has its own event loop,
    as each of the runtime's worker processes has."""
    start = threading.Barrier(count)
    results: list[int] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            start.wait()
            outcome = work(n)
            with lock:
                results.append(outcome)
        finally:
            loop.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
