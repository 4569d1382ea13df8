"""The AWS emulator of a system with a serverless context: planned by the runtime (moto, clearly
an emulator, ready on `/moto-api/`), the context's stream poller provisioning its table with a
stream and its bucket (idempotently), the proxy knowing the context as its function and its
pages; and the proxy's bucket target serving a page from the emulator's bucket."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest

from strangler.runtime.plan import Places, ProcessSpec, Topology, plan
from strangler.runtime.processes import start
from strangler.serverless.emulator import EMULATOR
from strangler.serverless.provision import client, provision
from strangler.workspace import Workspace, load_workspace
from strangler_proxy.app import create_app
from strangler_proxy.settings import ProxySettings
from tests.functions.conftest import Emulator
from tests.functions.handlers import TABLE
from tests.workspace.test_serverless_declaration import with_serverless

PORTS: dict[str, int] = {}


def port_of(name: str) -> int:
    return PORTS.setdefault(name, 21000 + len(PORTS))


def serverless_workspace(tmp_path: Path) -> Workspace:
    return load_workspace(with_serverless(tmp_path))


def places(workspace: Workspace, tmp_path: Path) -> Places:
    urls = {name: f"sqlite:///{tmp_path}/{name}.sqlite3" for name in
            ("monolith", "users", "polls", "forum", "search", "bus")}  # fmt: skip
    return Places(workspace, urls, "secret-0123456789abcdef", "admin", "system-1", tmp_path,
                  traces=False)  # fmt: skip


def planned(tmp_path: Path, port: PortOf | None = None) -> dict[str, ProcessSpec]:
    workspace = serverless_workspace(tmp_path)
    topology = Topology(services=("users",), syncs=("users",), serverless=("polls",))
    specs = plan(topology, places(workspace, tmp_path), port or port_of)
    return {spec.name: spec for spec in specs}


PortOf = type(port_of)


def test_a_serverless_context_runs_the_emulator_and_its_poller_before_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    specs = planned(tmp_path)
    names = list(specs)
    assert names.index(EMULATOR) < names.index("polls-stream-poller") < names.index("proxy")
    emulator = specs[EMULATOR]
    assert emulator.argv[1:4] == ("-m", "strangler.serverless.emulator_server", "-H")
    assert emulator.argv[-2:] == ("--writes", str(tmp_path / "aws-emulator" / "writes.jsonl"))
    assert emulator.health_url == f"http://127.0.0.1:{port_of(EMULATOR)}/moto-api/"
    proxy_env = specs["proxy"].env
    upstreams = json.loads(proxy_env["PROXY_UPSTREAMS"])
    assert upstreams["polls"] == "function:tests.functions.handlers:echo"
    assert upstreams["polls-pages"] == "bucket:polls-results/results/{poll_id}.html"
    assert upstreams["users"].startswith("http://127.0.0.1:")
    functions = json.loads(proxy_env["PROXY_FUNCTION_ENV"])["tests.functions.handlers:echo"]
    assert functions["AWS_ENDPOINT_URL"] == emulator.url == proxy_env["PROXY_BUCKET_ENDPOINT"]
    assert functions["POLLS_TABLE"] == "things" and functions["POLLS_BUCKET"] == "polls-results"
    assert functions["AWS_ACCESS_KEY_ID"] == "testing" and functions["LOG_LEVEL"] == "DEBUG"
    assert proxy_env["AWS_ACCESS_KEY_ID"] == "testing"  # it signs its reads of the pages
    poller = specs["polls-stream-poller"].env
    assert poller["POLLER_STREAM_HANDLER"] == "tests.functions.handlers:record_stream"
    assert poller["POLLER_CHECKPOINT_PATH"] == str(tmp_path / "stream-checkpoints/polls.json")
    assert poller["AWS_ENDPOINT_URL"] == emulator.url


def test_without_a_serverless_context_no_emulator_runs(tmp_path: Path) -> None:
    workspace = serverless_workspace(tmp_path)
    specs = plan(Topology(), places(workspace, tmp_path), port_of)
    assert EMULATOR not in {spec.name for spec in specs}
    assert "PROXY_FUNCTION_ENV" not in specs[-2].env


def test_provisioning_twice_creates_the_table_with_its_stream_and_the_bucket_once(
    aws_environment: Emulator,
) -> None:
    definition = {**TABLE, "TableName": f"things-{uuid.uuid4().hex[:8]}"}
    bucket = f"pages-{uuid.uuid4().hex[:8]}"
    first = provision(aws_environment.url, definition, bucket)
    again = provision(aws_environment.url, definition, bucket)
    assert first.table_created and first.bucket_created and first.stream_arn
    assert not again.table_created and not again.bucket_created
    assert again.stream_arn == first.stream_arn
    described = client("dynamodb", aws_environment.url).describe_table(
        TableName=definition["TableName"]
    )
    assert described["Table"]["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_end_to_end_the_planned_emulator_and_poller_provision_the_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processes `strangler up` would start for a serverless context, started here as the
    supervisor starts them: the emulator becomes ready, the poller provisions and is healthy."""
    pytest.importorskip("moto", reason="the serverless extra (moto) is not installed")
    from strangler.runtime.processes import free_port

    ports: dict[str, int] = {}
    specs = planned(tmp_path, lambda name: ports.setdefault(name, free_port()))
    monkeypatch.setenv("STREAM_RECORDS", str(tmp_path / "records.jsonl"))
    started = []
    try:
        for name in (EMULATOR, "polls-stream-poller"):
            spec = specs[name]
            process = start(name, spec.argv, spec.env, spec.health_url, tmp_path / f"{name}.log")
            started.append(process)
            process.wait_healthy(timeout=60)
        emulator_url = specs[EMULATOR].url
        tables = client("dynamodb", emulator_url).list_tables()["TableNames"]
        buckets = [b["Name"] for b in client("s3", emulator_url).list_buckets()["Buckets"]]
        assert "things" in tables and "polls-results" in buckets
        metrics = httpx.get(specs["polls-stream-poller"].url + "/metrics").text
        assert "stream_poller_batches_total" in metrics
    finally:
        for process in reversed(started):
            process.stop(grace=3)


PAGES_TABLE = """
[upstreams]
polls-pages = "bucket:{bucket}/results/{{poll_id}}.html"

[[routes]]
name = "polls.results_page"
methods = ["GET"]
path = "/results/{{poll_id}}.html"
context = "polls"
upstream = "polls-pages"
mode = "service"
data_owner = "service"
"""


def test_the_bucket_target_serves_a_page_and_a_missing_one_is_a_404_problem(
    aws_environment: Emulator, tmp_path: Path
) -> None:
    bucket = f"pages-{uuid.uuid4().hex[:8]}"
    provision(aws_environment.url, None, bucket)
    client("s3", aws_environment.url).put_object(
        Bucket=bucket, Key="results/7.html", Body=b"<h1>seven</h1>",
        ContentType="text/html; charset=utf-8",
    )  # fmt: skip
    table = tmp_path / "table.toml"
    table.write_text(PAGES_TABLE.format(bucket=bucket))
    app = create_app(
        ProxySettings(
            monolith_url="http://monolith", route_table_path=table,
            audit_log_path=tmp_path / "audit.jsonl", access_log=False, table_watch_seconds=0,
            analysis_interval_seconds=0, bucket_endpoint=aws_environment.url,
        )
    )  # fmt: skip

    async def ask() -> list[httpx.Response]:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
                return [
                    await http.get("/results/7.html"),
                    await http.get("/results/8.html", headers={"x-request-id": "req-missing"}),
                ]
        finally:
            await app.shutdown()

    page, missing = asyncio.run(ask())
    assert page.status_code == 200 and page.text == "<h1>seven</h1>"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["request_id"] == "req-missing"
