"""Specification of the deployable nginx export, run by a real nginx: a sticky, one-way canary
split and a shadow copy that never changes the client's answer."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from strangler.gateways.exports import export
from strangler.gateways.settings import GatewaySettings
from strangler.runtime.processes import free_port
from strangler_proxy.table import parse_table
from tests.proxy.conftest import Upstream

CANARY = """
[[routes]]
name = "forum.get_thread"
methods = ["GET"]
path = "/api/threads/{thread_id}"
context = "forum"
mode = "canary"
canary_percent = {percent}
"""

SHADOW = """
[[routes]]
name = "forum.get_thread"
methods = ["GET"]
path = "/api/threads/{thread_id}"
context = "forum"
mode = "shadow"
"""


class Recorder:
    """A service that answers every request and remembers what arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = json.dumps({"answered_by": "recorder"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *arguments: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    yield running
    running.close()


def serve_export(table_text: str, upstreams: dict[str, str], folder: Path, nginx: str) -> str:
    """Run `nginx -p folder` on the export of `table_text`; return its URL (stopped by caller)."""
    port = free_port()
    table = parse_table(table_text, known_upstreams=["forum"])
    export(table, "nginx", upstreams, GatewaySettings(listen_port=port)).write(folder)
    arguments = ["-p", f"{folder}/", "-c", str(folder / "nginx.conf")]
    subprocess.run([nginx, *arguments], check=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return url
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the exported nginx did not start")


@pytest.fixture
def exported_nginx(tmp_path: Path, nginx_binary: str) -> Iterator:  # type: ignore[type-arg]
    folders: list[Path] = []

    def start(table_text: str, upstreams: dict[str, str]) -> str:
        folder = tmp_path / f"export-{len(folders)}"
        folders.append(folder)
        return serve_export(table_text, upstreams, folder, nginx_binary)

    yield start
    for folder in folders:
        arguments = ["-p", f"{folder}/", "-c", str(folder / "nginx.conf"), "-s", "stop"]
        subprocess.run([nginx_binary, *arguments], check=False)


def sides(url: str, callers: range) -> dict[int, str]:
    with httpx.Client(timeout=10) as client:
        return {
            caller: client.get(
                f"{url}/api/threads/1", headers={"X-Client-ID": f"c{caller}"}
            ).json()["answered_by"]
            for caller in callers
        }


def test_a_canary_is_sticky_per_caller_and_only_grows_one_way(
    exported_nginx, monolith: Upstream, users: Upstream
) -> None:  # type: ignore[no-untyped-def]
    upstreams = {"monolith": monolith.url, "forum": users.url}
    at_30 = exported_nginx(CANARY.replace("{percent}", "30"), upstreams)
    first, again = sides(at_30, range(300)), sides(at_30, range(300))
    assert first == again
    share = sum(side == "users" for side in first.values()) / len(first)
    assert 0.2 < share < 0.4
    at_60 = sides(exported_nginx(CANARY.replace("{percent}", "60"), upstreams), range(300))
    assert all(at_60[caller] == "users" for caller, side in first.items() if side == "users")
    assert sum(side == "users" for side in at_60.values()) > sum(
        side == "users" for side in first.values()
    )


def test_a_shadow_copy_reaches_the_service_and_the_monolith_answers(
    exported_nginx, monolith: Upstream, recorder: Recorder
) -> None:  # type: ignore[no-untyped-def]
    url = exported_nginx(SHADOW, {"monolith": monolith.url, "forum": recorder.url})
    answer = httpx.get(f"{url}/API//threads/./7?x=1", headers={"X-Request-ID": "shadowed-1"})
    assert answer.json()["answered_by"] == "monolith"
    deadline = time.monotonic() + 5
    while not recorder.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    path, headers = recorder.seen[0]
    assert path == "/API/threads/7?x=1"
    assert headers["x-strangler-shadow"] == "1"
    assert headers["x-request-id"] == "shadowed-1"
