"""Reading a table's DynamoDB Streams the way an event source mapping does, for the tests.

`StreamReader` follows every shard of the table's latest stream from its start and returns the
records written since the last read (DescribeStream, GetShardIterator, GetRecords), which the
tests hand to `on_stream` as Lambda would. The toolkit's poller does this for `strangler up`.
"""

from __future__ import annotations

from typing import Any


class StreamReader:
    """The new records of one table's stream, shard by shard, from the beginning."""

    def __init__(self, dynamodb: Any, streams: Any, table: str) -> None:
        self.streams = streams
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str | None] = {}

    def read(self) -> list[dict[str, Any]]:
        """Every record written since the last read, in each shard's order."""
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while (iterator := self.iterators[shard_id]) is not None:
                answer = self.streams.get_records(ShardIterator=iterator)
                self.iterators[shard_id] = answer.get("NextShardIterator")
                records.extend(answer["Records"])
                if not answer["Records"]:
                    break
        return records
