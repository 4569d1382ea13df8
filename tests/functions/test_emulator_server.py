"""The emulator as the toolkit runs it (`strangler.serverless.emulator_server`): killed with
SIGKILL and started again on its writes file, it holds what it held (items, the stream's records
with their sequence numbers, a bucket's object); a refused transaction leaves neither an item
nor a stream record behind; writes racing from threads are each applied whole, once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.serverless.emulator import HEALTH_PATH, emulator_command

TABLE = {
    "TableName": "things",
    "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


class Server:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        self.process = start(
            "aws-emulator",
            emulator_command(self.port, writes=self.folder / "writes.jsonl"),
            {}, f"{self.url}{HEALTH_PATH}", self.folder / "aws-emulator.log",
        )  # fmt: skip
        self.process.wait_healthy(timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.signal(signal.SIGKILL)
        self.process.stop(grace=10)  # reaps it (and its group)

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name="us-east-1").client(
            service, endpoint_url=self.url, aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path)
    found.start()
    yield found
    if found.process is not None:
        found.process.stop(grace=3)


def records(server: Server) -> list[tuple[str, str]]:
    """(sequence number, key) of every record of the table's stream."""
    dynamodb, streams = server.client("dynamodb"), server.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName="things")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    found = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [(r["dynamodb"]["SequenceNumber"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in found]


def put(dynamodb: Any, key: str, value: int) -> None:
    dynamodb.put_item(TableName="things", Item={"PK": {"S": key}, "n": {"N": str(value)}})


def test_killed_and_started_again_it_holds_its_items_stream_and_objects(server: Server) -> None:
    dynamodb, s3 = server.client("dynamodb"), server.client("s3")
    dynamodb.create_table(**TABLE)
    for number in range(5):
        put(dynamodb, f"thing-{number}", number)
    dynamodb.delete_item(TableName="things", Key={"PK": {"S": "thing-0"}})
    s3.create_bucket(Bucket="pages")
    s3.put_object(Bucket="pages", Key="results/1.html", Body=b"<p>1</p>",
                  ContentType="text/html")  # fmt: skip
    before = records(server)
    server.kill()
    server.start()
    dynamodb, s3 = server.client("dynamodb"), server.client("s3")
    items = dynamodb.scan(TableName="things", ConsistentRead=True)["Items"]
    assert sorted(item["PK"]["S"] for item in items) == [f"thing-{n}" for n in range(1, 5)]
    assert records(server) == before and len(before) == 6
    page = s3.get_object(Bucket="pages", Key="results/1.html")
    assert page["Body"].read() == b"<p>1</p>" and page["ContentType"] == "text/html"
    put(dynamodb, "thing-9", 9)  # and it goes on numbering after what it held
    after = records(server)
    assert after[:6] == before and int(after[6][0]) > int(before[-1][0])


def test_a_refused_transaction_leaves_no_item_and_no_stream_record(server: Server) -> None:
    dynamodb = server.client("dynamodb")
    dynamodb.create_table(**TABLE)
    put(dynamodb, "kept", 1)
    before = records(server)
    actions = [{"Put": {"TableName": "things", "Item": {"PK": {"S": f"new-{n}"}}}}
               for n in range(50)]  # fmt: skip
    actions.append({"Put": {
        "TableName": "things", "Item": {"PK": {"S": "kept"}, "n": {"N": "2"}},
        "ConditionExpression": "n = :seen", "ExpressionAttributeValues": {":seen": {"N": "7"}},
    }})  # fmt: skip
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=actions)
    items = dynamodb.scan(TableName="things", ConsistentRead=True)["Items"]
    assert [(item["PK"]["S"], item["n"]["N"]) for item in items] == [("kept", "1")]
    assert records(server) == before


def test_counters_raised_from_threads_lose_no_increment(server: Server) -> None:
    dynamodb = server.client("dynamodb")
    dynamodb.create_table(**TABLE)

    def add(_: int) -> None:
        server.client("dynamodb").update_item(
            TableName="things", Key={"PK": {"S": "counter"}}, UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(80)))
    item = dynamodb.get_item(TableName="things", Key={"PK": {"S": "counter"}})["Item"]
    assert item["n"]["N"] == "80"
