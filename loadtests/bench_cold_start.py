"""Benchmark: the polls function's cold start, in fresh interpreters, against a moto server.

    python -m loadtests.bench_cold_start [--runs 15] [--top 15]

Starts moto in server mode on a free loopback port (an emulator, not AWS: docs/serverless.md),
creates the polls table and the pages' bucket, and creates one poll through the function.
Then, `--runs` times, a fresh interpreter (`python -c`, nothing imported but the function and
the standard library's `json`, `sys` and `time`) imports `extracted.polls.serverless` and
answers one `GET /api/polls/{id}` event (API Gateway HTTP API, payload 2.0): its first
invocation builds the app and the boto3 clients, as a new Lambda container's does. Printed,
as medians of the runs: the import, the first invocation, their sum (the cold start) and the
whole process, from its spawn to its exit (interpreter start and teardown included). Then,
from one more interpreter run with `-X importtime`, the imports that cost the most (cumulative,
nested imports included) and the packages whose own modules cost the most (self time summed).
This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from extracted.polls.serverless import handler
from extracted.polls.serverless.table import DEFINITION
from loadtests.fronts import TOKEN_SECRET
from strangler.plumbing.tokens import TokenSigner
from strangler.runtime.processes import free_port, start
from strangler_proxy.function_event import FunctionRequest, http_api_event

REGION = "us-east-1"
TABLE = "polls-bench"
BUCKET = "polls-results-bench"
ROOT = Path(__file__).resolve().parents[1]

# What a new container runs: the import, then the first invocation. Timed inside the child so
# that its interpreter's own start is not counted twice; the parent times the whole process.
CHILD = """\
import json, sys, time
started = time.perf_counter()
import extracted.polls.serverless as function
imported = time.perf_counter()
answer = function.handler(json.loads(sys.argv[1]), None)
answered = time.perf_counter()
heavy = sorted(set(sys.argv[2].split(",")) & set(sys.modules))
print(json.dumps({"import": imported - started, "first": answered - imported,
                  "status": answer["statusCode"], "heavy": heavy}))
"""
# Modules worth naming when a cold start loads them: what the function does not use, or heavy.
WATCHED = (
    "sqlalchemy",
    "alembic",
    "greenlet",
    "extracted.polls.models",
    "strangler.events.outbox",
    "opentelemetry.sdk",
    "prometheus_client",
    "boto3",
    "s3transfer",
    "rich",
    "pygments",
)


def _environment(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POLLS_TABLE": TABLE,
        "POLLS_BUCKET": BUCKET,
        "STRANGLER_TOKEN_SECRET": TOKEN_SECRET,
        "LOG_LEVEL": "WARNING",  # an access-log line per run is not what is measured
        "PYTHONPATH": str(ROOT),
    }


def _event(method: str, path: str, body: bytes | None = None, token: str = "") -> dict[str, Any]:
    headers = [("host", "polls.local")]
    if body is not None:
        headers.append(("content-type", "application/json"))
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    request = FunctionRequest(method, path, "", headers, body, request_id="bench-cold-start")
    return http_api_event(request)


def _provision(environment: dict[str, str]) -> int:
    """Create the table and the bucket, and one poll through the function; its id."""
    os.environ.update(environment)  # boto3 and the function read their configuration there
    session = boto3.session.Session(region_name=REGION)
    session.client("dynamodb").create_table(**{**DEFINITION, "TableName": TABLE})
    session.client("s3").create_bucket(Bucket=BUCKET)
    token = TokenSigner(TOKEN_SECRET).issue(1)
    body = json.dumps({"question": "Cold or warm?", "options": ["cold", "warm"]}).encode()
    answer = handler(_event("POST", "/api/polls", body, token), None)
    if answer["statusCode"] != 201:
        raise SystemExit(f"creating the poll answered {answer['statusCode']}: {answer['body']}")
    return int(json.loads(answer["body"])["id"])


def _cold_start(event: dict[str, Any], environment: dict[str, str]) -> dict[str, Any]:
    spawned = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(event), ",".join(WATCHED)],
        env={**os.environ, **environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(finished.stdout)
    figures["process"] = time.perf_counter() - spawned
    return figures


def _import_profile(environment: dict[str, str]) -> list[tuple[int, int, str]]:
    """`(self us, cumulative us, module)` of each import of the function, from -X importtime."""
    finished = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import extracted.polls.serverless"],
        env={**os.environ, **environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in finished.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, module = line.removeprefix("import time:").split("|")
        rows.append((int(own), int(cumulative), module.strip()))
    return rows


def _report(runs: list[dict[str, Any]], profile: list[tuple[int, int, str]], top: int) -> None:
    def median_ms(key: str) -> float:
        return statistics.median(run[key] for run in runs) * 1000

    cold = statistics.median(run["import"] + run["first"] for run in runs) * 1000
    print(f"polls function, {len(runs)} cold starts in fresh interpreters (medians):")
    print(f"  import extracted.polls.serverless  {median_ms('import'):7.0f} ms")
    print(f"  first invocation (build + answer)  {median_ms('first'):7.0f} ms")
    print(f"  cold start (import + first)        {cold:7.0f} ms")
    print(f"  whole process (spawn to exit)      {median_ms('process'):7.0f} ms")
    print(f"  statuses: {sorted({run['status'] for run in runs})}")
    print(f"  loaded, of {', '.join(WATCHED)}: {', '.join(runs[0]['heavy']) or 'none'}")
    print(f"\ntop {top} imports by cumulative time (one run, -X importtime):")
    for _, cumulative, module in sorted(profile, key=lambda row: -row[1])[:top]:
        print(f"  {cumulative / 1000:7.1f} ms  {module}")
    packages: Counter[str] = Counter()
    for own, _, module in profile:
        packages[module.split(".")[0]] += own
    print(f"\ntop {top} packages by the self time of their modules:")
    for package, own in packages.most_common(top):
        print(f"  {own / 1000:7.1f} ms  {package}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters to time")
    parser.add_argument("--top", type=int, default=15, help="imports and packages to list")
    arguments = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = _environment(url)
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as scratch:
        moto = start(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            {},
            health_url=f"{url}/moto-api/",
            log_path=Path(scratch) / "moto.log",
        )
        try:
            moto.wait_healthy()
            poll_id = _provision(environment)
            event = _event("GET", f"/api/polls/{poll_id}")
            runs = [_cold_start(event, environment) for _ in range(arguments.runs)]
            profile = _import_profile(environment)
        finally:
            moto.stop()
    _report(runs, profile, arguments.top)


if __name__ == "__main__":
    main()
