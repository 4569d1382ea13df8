"""Fixtures of the polls functions' tests: AWS emulated by moto, in server mode, on loopback.

Everything here runs against moto, an emulator of DynamoDB, DynamoDB Streams and S3: what it
proves and what it does not about AWS is in docs/serverless.md. One moto server per module,
started as a subprocess on a free port in its own process group and stopped with the group.
The functions read their configuration from the environment (`extracted.polls.serverless
.settings`), so the fixture sets it as the runtime would, and drops the functions' warm state
before and after, so each module's functions start cold against its own server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from extracted.polls.serverless import discard_warm_state
from extracted.polls.serverless.table import DEFINITION
from strangler.runtime.processes import free_port, start
from tests.serverless.streams import StreamReader
from tests.support.servers import TEST_TOKEN_SECRET

REGION = "us-east-1"
TABLE = "polls-under-test"
BUCKET = "polls-results-under-test"


@dataclass(frozen=True)
class Emulated:
    """The emulated account: its URL, clients on it, the table and the bucket, the stream."""

    url: str
    dynamodb: Any
    s3: Any
    stream: StreamReader
    table: str = TABLE
    bucket: str = BUCKET


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulated]:
    """A moto server with the polls table (from `DEFINITION`) and the pages' bucket, and the
    functions' environment pointing at it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        {},
        health_url=f"{url}/moto-api/",
        log_path=tmp_path_factory.mktemp("moto") / "moto.log",
    )
    try:
        moto.wait_healthy()
        environment = {
            "AWS_ENDPOINT_URL": url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POLLS_TABLE": TABLE,
            "POLLS_BUCKET": BUCKET,
            "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
        }
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            discard_warm_state()
            session = boto3.session.Session(region_name=REGION)
            dynamodb = session.client("dynamodb")
            dynamodb.create_table(**{**DEFINITION, "TableName": TABLE})
            s3 = session.client("s3")
            s3.create_bucket(Bucket=BUCKET)
            stream = StreamReader(dynamodb, session.client("dynamodbstreams"), TABLE)
            yield Emulated(url, dynamodb, s3, stream)
            discard_warm_state()
    finally:
        moto.stop()
