"""The polls function's cold start loads none of the SQL side, in a fresh interpreter.

A Lambda function pays its imports on every cold start, and the polls function shares modules
with the SQL service (presenters, the page template, the plumbing). So a new interpreter, as a
new container, imports `extracted.polls.serverless`, builds the app on its first invocation and
answers a poll's creation, its read, its page and `/healthz` against moto (docs/serverless.md);
then none of what the function never uses may be in `sys.modules`. How long that takes is
`loadtests/bench_cold_start.py`'s to print, never a test's to assert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from strangler.plumbing.tokens import TokenSigner
from tests.serverless.conftest import Emulated
from tests.serverless.events import http_event
from tests.support.servers import TEST_TOKEN_SECRET

ROOT = Path(__file__).resolve().parents[2]

# Never needed by the function: SQLAlchemy and what is built on it, the outbox, alembic, and
# boto3 with s3transfer (the function builds botocore's clients itself).
NEVER_LOADED = (
    "sqlalchemy",
    "alembic",
    "extracted.polls.models",
    "extracted.polls.service",
    "extracted.polls.projection",
    "extracted.polls.api",
    "strangler.plumbing.database",
    "strangler.events.outbox",
    "boto3",
    "s3transfer",
)

# A new container: the import, then invocations; what it answered and what it loaded.
CONTAINER = """\
import json, sys
import extracted.polls.serverless as function
answers = [function.handler(event, None) for event in json.loads(sys.argv[1])]
print(json.dumps({
    "answers": [[answer["statusCode"], answer.get("body", "")] for answer in answers],
    "loaded": sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules),
}))
"""


def cold_start(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What a fresh interpreter answered to `events` and which of NEVER_LOADED it loaded."""
    finished = subprocess.run(
        [sys.executable, "-c", CONTAINER, json.dumps(events), json.dumps(NEVER_LOADED)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def test_a_cold_start_answering_polls_loads_no_sqlalchemy(aws: Emulated) -> None:
    token = TokenSigner(TEST_TOKEN_SECRET).issue(7)
    events = [
        http_event(
            "POST",
            "/api/polls",
            json_body={"question": "Cold?", "options": ["yes", "no"]},
            headers={"authorization": f"Bearer {token}"},
        ),
        http_event("GET", "/api/polls/1"),  # the table's first poll: ids start at 1
        http_event("GET", "/results/1.html"),  # no page in the bucket yet: rendered here
        http_event("GET", "/healthz"),
    ]

    started = cold_start(events)

    statuses = [status for status, _ in started["answers"]]
    assert statuses == [201, 200, 200, 200], started["answers"]
    assert json.loads(started["answers"][0][1])["id"] == 1
    assert started["loaded"] == []
