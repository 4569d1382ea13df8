"""The stream poller against a real moto server: every record of the table's stream reaches the
stream handler in order, a batch is checkpointed only once handled, a failed batch is retried,
and a poller killed with SIGKILL mid-stream and restarted delivers every record at least once
and skips none."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from strangler.runtime.processes import free_port, start
from strangler.serverless.poller import Checkpoints, PollerMetrics, StreamPoller
from strangler.serverless.provision import client, provision
from tests.functions.conftest import Emulator
from tests.functions.handlers import TABLE


def fresh_table(emulator: Emulator) -> tuple[str, str]:
    """A new table with a stream: (its name, its stream's ARN)."""
    name = f"things-{uuid.uuid4().hex[:8]}"
    provisioned = provision(emulator.url, {**TABLE, "TableName": name}, None)
    assert provisioned.stream_arn is not None
    return name, provisioned.stream_arn


def write(emulator: Emulator, table: str, keys: list[str]) -> None:
    dynamodb = client("dynamodb", emulator.url)
    for key in keys:
        dynamodb.put_item(TableName=table, Item={"id": {"S": key}, "n": {"N": "1"}})


def poller_of(
    emulator: Emulator, stream_arn: str, handler: Any, tmp_path: Path, batch: int = 4
) -> StreamPoller:
    return StreamPoller(
        "things", client("dynamodbstreams", emulator.url), stream_arn, handler,
        Checkpoints(tmp_path / "checkpoints.json"), PollerMetrics(), batch, (0.01, 0.05),
    )  # fmt: skip


def drain(poller: StreamPoller, until: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "the poller did not deliver in time"
        if poller.step() == 0:
            time.sleep(0.05)


def keys_of(records: list[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["Keys"]["id"]["S"] for record in records]


def test_records_reach_the_handler_in_order_in_lambda_s_shape(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    table, stream_arn = fresh_table(aws_environment)
    keys = [f"k{index:03d}" for index in range(10)]
    write(aws_environment, table, keys)
    received: list[dict[str, Any]] = []
    batches: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        batches.append(len(event["Records"]))
        received.extend(event["Records"])

    poller = poller_of(aws_environment, stream_arn, handler, tmp_path)
    drain(poller, lambda: len(received) >= len(keys))
    assert keys_of(received) == keys
    assert max(batches) <= 4
    assert poller.metrics.failures.labels("things", "read")._value.get() == 0
    assert poller.metrics.batches.labels("things")._value.get() == len(batches)
    first = received[0]
    assert first["eventName"] == "INSERT" and first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == stream_arn and first["awsRegion"] == "us-east-1"
    assert first["dynamodb"]["NewImage"] == {"id": {"S": "k000"}, "n": {"N": "1"}}
    json.dumps(received)  # what a function gets is JSON
    saved = json.loads((tmp_path / "checkpoints.json").read_text())
    assert list(saved.values()) == [received[-1]["dynamodb"]["SequenceNumber"]]


def test_a_failed_batch_is_retried_and_nothing_after_it_is_skipped(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    table, stream_arn = fresh_table(aws_environment)
    keys = [f"k{index:03d}" for index in range(8)]
    write(aws_environment, table, keys)
    received: list[str] = []
    failures = {"left": 2}

    def handler(event: dict[str, Any], context: Any) -> None:
        batch = keys_of(event["Records"])
        if "k005" in batch and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not now")
        received.extend(batch)

    poller = poller_of(aws_environment, stream_arn, handler, tmp_path)
    drain(poller, lambda: len(received) >= len(keys))
    assert received == keys
    assert poller.metrics.failures.labels("things", "handler")._value.get() == 2


def test_a_restarted_poller_resumes_after_its_checkpoint(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    table, stream_arn = fresh_table(aws_environment)
    write(aws_environment, table, ["a", "b", "c"])
    first: list[str] = []
    poller = poller_of(
        aws_environment, stream_arn, lambda e, c: first.extend(keys_of(e["Records"])), tmp_path
    )
    drain(poller, lambda: len(first) >= 3)
    write(aws_environment, table, ["d", "e"])
    second: list[str] = []
    again = poller_of(
        aws_environment, stream_arn, lambda e, c: second.extend(keys_of(e["Records"])), tmp_path
    )
    drain(again, lambda: len(second) >= 2)
    assert first == ["a", "b", "c"] and second == ["d", "e"]


def poller_process(emulator: Emulator, table: str, tmp_path: Path, port: int) -> Any:
    env = {
        "AWS_ENDPOINT_URL": emulator.url, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "POLLER_CONTEXT": "things", "POLLER_PORT": str(port),
        "POLLER_STREAM_HANDLER": "tests.functions.handlers:record_stream",
        "POLLER_TABLE_DEFINITION": "tests.functions.handlers:TABLE",
        "POLLER_CHECKPOINT_PATH": str(tmp_path / "state" / "stream-checkpoints" / "things.json"),
        "POLLER_BATCH_SIZE": "3", "POLLER_IDLE_SECONDS": "0.05",
        "STREAM_RECORDS": str(tmp_path / "records.jsonl"), "STREAM_DELAY": "0.15",
    }  # fmt: skip
    return start(
        "things-stream-poller", [sys.executable, "-m", "strangler.serverless.poller"], env,
        f"http://127.0.0.1:{port}/healthz", tmp_path / f"poller-{time.monotonic_ns()}.log",
    )  # fmt: skip


def delivered(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_end_to_end_a_poller_killed_mid_stream_delivers_every_record_at_least_once(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    """The poller process (as `strangler up` runs it) provisions the table `TABLE` names; it is
    killed with SIGKILL while handling batches, restarted, and catches up."""
    emulator = aws_environment
    keys = [f"k{index:03d}" for index in range(30)]
    port = free_port()
    process = poller_process(emulator, "things", tmp_path, port)
    try:
        process.wait_healthy(timeout=60)
        failures: list[BaseException] = []

        def writing() -> None:
            try:
                write(emulator, "things", keys)
            except BaseException as error:  # seen by the test, not lost in the thread
                failures.append(error)

        writer = threading.Thread(target=writing)
        writer.start()
        deadline = time.monotonic() + 30
        while len(delivered(tmp_path)) < 9:
            assert not failures and time.monotonic() < deadline, (failures, process.log_tail())
            time.sleep(0.05)
        process.signal(signal.SIGKILL)
        process.popen.wait(timeout=10)
        writer.join()
        before = len(delivered(tmp_path))
        assert before < len(keys), "the poller was killed after it had finished"
        process = poller_process(emulator, "things", tmp_path, port)
        process.wait_healthy(timeout=60)
        deadline = time.monotonic() + 60
        while set(keys) - set(keys_of(delivered(tmp_path))):
            assert time.monotonic() < deadline, process.log_tail()
            time.sleep(0.1)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'stream_poller_batches_total{context="things"}' in metrics
        assert 'stream_poller_lag_seconds{context="things"}' in metrics
    finally:
        process.stop(grace=3)
    records = delivered(tmp_path)
    sequence = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    first_seen = list(dict.fromkeys(sequence))
    assert first_seen == sorted(first_seen)  # in order, redelivery only repeats
    assert sorted(set(keys_of(records))) == keys  # none skipped


def test_a_partial_batch_response_retries_from_the_failed_record_only(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    table, stream_arn = fresh_table(aws_environment)
    keys = ["a", "b", "c", "d"]
    write(aws_environment, table, keys)
    received: list[str] = []
    reported = {"done": False}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = keys_of(event["Records"])
        if not reported["done"]:
            reported["done"] = True
            received.extend(batch[:2])
            failed = event["Records"][2]["dynamodb"]["SequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        received.extend(batch)
        return {"batchItemFailures": []}

    poller = poller_of(aws_environment, stream_arn, handler, tmp_path)
    drain(poller, lambda: len(received) >= len(keys))
    assert received == keys
