"""Provisioning a serverless context's table (with its stream) and bucket, idempotently.

What a deployment would create, created against the emulator before the context serves: the
table from its `create_table` definition (an existing table is kept; its stream is enabled if
the definition asks for one and it lacks it) and the bucket of its pages (an existing one is
kept). Running it twice changes nothing the second time. This module must never delete
anything nor touch a resource the workspace does not declare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from strangler.serverless.emulator import DEFAULT_REGION

EXISTS = ("ResourceInUseException", "BucketAlreadyOwnedByYou", "BucketAlreadyExists")


@dataclass(frozen=True)
class Provisioned:
    """What a run found and did: created or kept, and the table's stream."""

    table: str | None
    table_created: bool
    stream_arn: str | None
    bucket: str | None
    bucket_created: bool


def client(service: str, endpoint: str | None) -> Any:
    """A boto3 client of the emulator at `endpoint` (or of AWS when None)."""
    import boto3  # heavy: imported when a context is provisioned or polled, never at import

    region = os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def provision_table(dynamodb: Any, definition: dict[str, Any]) -> tuple[bool, str | None]:
    """Create the table unless it exists; (created, its latest stream ARN)."""
    name = definition["TableName"]
    created = True
    try:
        dynamodb.create_table(**definition)
    except Exception as error:
        if _code(error) not in EXISTS:
            raise
        created = False
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    described = dynamodb.describe_table(TableName=name)["Table"]
    wanted = definition.get("StreamSpecification") or {}
    if wanted.get("StreamEnabled") and not described.get("StreamSpecification", {}).get(
        "StreamEnabled"
    ):
        dynamodb.update_table(TableName=name, StreamSpecification=wanted)
        described = dynamodb.describe_table(TableName=name)["Table"]
    return created, described.get("LatestStreamArn")


def provision_bucket(s3: Any, bucket: str) -> bool:
    """Create the bucket unless it exists; whether it was created. (S3 in us-east-1 answers a
    second create of one's own bucket with success, so existence is asked first.)"""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except Exception as error:
        if _code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    options: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**options)
    except Exception as error:
        if _code(error) not in EXISTS:
            raise
        return False
    return True


def provision(
    endpoint: str | None, definition: dict[str, Any] | None, bucket: str | None
) -> Provisioned:
    """The table and the bucket a context declares, created if missing."""
    table_created, stream_arn = False, None
    if definition is not None:
        table_created, stream_arn = provision_table(client("dynamodb", endpoint), definition)
    bucket_created = provision_bucket(client("s3", endpoint), bucket) if bucket else False
    table = None if definition is None else str(definition["TableName"])
    return Provisioned(table, table_created, stream_arn, bucket, bucket_created)
