"""Small functions of the toolkit's serverless tests (never the example's): an echo of the
API Gateway event, handlers that fail in each way a function can, a stream handler that records
what it received, and a table definition."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

TABLE: dict[str, Any] = {
    "TableName": "things",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}
TABLE_WITHOUT_STREAM = {key: value for key, value in TABLE.items() if key != "StreamSpecification"}
IMPORTED_AT = time.time()


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with the event it got, what the worker knows of itself, and a cookie."""
    body = {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "environment": {k: v for k, v in os.environ.items() if k.startswith("ECHO_")},
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-echo": "yes"},
        "multiValueHeaders": {"x-many": ["one", "two"]},
        "cookies": ["flavour=oat; Path=/", "size=big"],
        "body": json.dumps(body),
    }


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(bytes(range(256))).decode(),
        "isBase64Encoded": True,
    }


def fails(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("the function failed on purpose")


def malformed(event: dict[str, Any], context: Any) -> Any:
    return ["not", "a", "response"]


def dies(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(3)


def sleeps(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event.get("queryStringParameters", {}).get("seconds", "30")))
    return {"statusCode": 200, "body": "woke"}


def record_stream(event: dict[str, Any], context: Any) -> None:
    """Appends every record it is given to the file `STREAM_RECORDS` names, one JSON line
    each, after sleeping `STREAM_DELAY` seconds; fails the first batch holding the key
    `STREAM_FAIL_ON` once per marker file (a batch that failed is retried)."""
    records = event["Records"]
    fail_on = os.environ.get("STREAM_FAIL_ON")
    if fail_on:
        marker = Path(os.environ["STREAM_RECORDS"] + ".failed")
        keys = [record["dynamodb"]["Keys"]["id"]["S"] for record in records]
        if fail_on in keys and not marker.exists():
            marker.write_text("once")
            raise RuntimeError(f"failing the batch holding {fail_on} once")
    time.sleep(float(os.environ.get("STREAM_DELAY", "0")))
    with open(os.environ["STREAM_RECORDS"], "a", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
        file.flush()
        os.fsync(file.fileno())


def like_the_monolith(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers what the tests' fake monolith answers (a shadow comparison finds them equal)."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"from": "monolith"}),
    }
