"""The static results pages in the bucket: one object per poll, `results/<poll id>.html`.

The bucket is what the proxy (or a CDN on AWS) serves `/results/<poll id>.html` from. Pages are
rendered exactly as the service's folder of pages renders them (`extracted.polls.pages`). A put
replaces an object whole, so a reader gets the old page or the new one, never a torn one. This
module never reads the table and never answers HTTP.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from extracted.polls import pages
from extracted.polls.presenters import Results

S3Client = Any  # boto3's client("s3"): botocore builds its methods at run time
PAGE_KEY = "results/{poll_id}.html"  # the workspace's `pages` (docs/serverless.md)
CONTENT_TYPE = "text/html; charset=utf-8"


class BucketPages:
    """Writes and reads the results pages kept in one bucket."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def key(self, poll_id: int) -> str:
        return PAGE_KEY.format(poll_id=poll_id)

    def write(self, results: Results) -> None:
        """Replace the page of `results.poll_id` with one showing `results`."""
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(results.poll_id),
            Body=pages.render(results).encode(),
            ContentType=CONTENT_TYPE,
        )

    def read(self, poll_id: int) -> bytes | None:
        """The page as last written, or None if there is none yet."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(poll_id))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(answer["Body"].read())
