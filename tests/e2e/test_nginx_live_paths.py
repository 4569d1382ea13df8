"""The proxy's path and header rules hold on the live nginx plane of `strangler up --data-plane
nginx` at stage 1 (users extracted, served by nginx straight from the users service).

The spellings and refusals are those of tests/gateways/test_nginx_paths.py (nginx in front of
echo upstreams); here the upstreams are the forum's own. Which side answered is read from
nginx's JSON access log, what the upstream received from its own request log (the path as it
decoded it, the request id, the trace id), both by request id. The forwarding headers
(`X-Forwarded-*`, `X-Real-IP`) are not in the forum's logs: tests/gateways/
test_nginx_forwarding.py checks them on the same rendering with an upstream that echoes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.gateways.nginx_control import nginx_targets
from strangler.gateways.nginx_plane import NginxNotInstalled, find_nginx
from strangler_proxy.paths import canonicalise
from tests.e2e.test_crash_safety import System, running
from tests.gateways.conftest import body_of, raw_request
from tests.gateways.test_nginx_paths import AMBIGUOUS_TARGETS, SERVICE_SPELLINGS

pytestmark = pytest.mark.slow

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
# Spellings that must reach the users service as the canonical path (decoded once).
TO_THE_SERVICE = [
    *SERVICE_SPELLINGS,
    b"/api//x/../users/%37/",
    b"/api/users/%252F7",  # decoded once: the service sees the text %2F
    b"/api/users/7/posts/..",
    b"/api/users/7/%2e%2e/7",
]
REFUSED_BY_NGINX_S_PARSER = {
    b"/api/users/7%00", b"/api/users/%zz", b"/api/users/%7", b"/api/users/%",
    b"/../api/users/7", b"/api/../../users/7", b"/%2e%2e/api/users/7", b"api/users/7",
}  # fmt: skip
# A monolith path cannot be disguised as a service path, nor the reverse.
TO_THE_MONOLITH = [b"/api/users/7/posts", b"/api//users/7/posts", b"/api/threads/1"]


def nginx_system(folder: Path, *arguments: str) -> Iterator[System]:
    """`strangler up --data-plane nginx ARGUMENTS` in `folder`, for a module's tests; skipped
    where nginx is not installed."""
    try:
        find_nginx()
    except NginxNotInstalled as missing:
        pytest.skip(f"{missing} (.ci/run installs it)")
    with running(folder, {}, "--data-plane", "nginx", *arguments) as found:
        yield found


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from nginx_system(tmp_path_factory.mktemp("nginx-live-paths"), "--stage", "1")


def upstream_line(system: System, name: str, request_id: str) -> dict[str, object]:
    """The request log line of upstream `name` for `request_id` (waits for it)."""
    log = system.folder / ".strangler" / "logs" / f"{name}.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if request_id in line:
                entry: dict[str, object] = json.loads(line)
                if entry.get("request_id") == request_id and entry.get("event") == "request":
                    return entry
        time.sleep(0.2)
    raise AssertionError(f"{request_id} is not in {log}")


def target_of(system: System, request_id: str) -> str:
    found = nginx_targets(system.folder / ".strangler" / "nginx", [request_id], patience=10)
    assert request_id in found, f"{request_id} is not in nginx's access log"
    return found[request_id]


@pytest.mark.parametrize("raw", TO_THE_SERVICE)
def test_every_spelling_of_a_service_path_reaches_the_service_canonical(
    system: System, raw: bytes
) -> None:
    request_id = f"spelling-{time.monotonic_ns()}"
    status, answer = raw_request(system.url, raw, f"X-Request-ID: {request_id}\r\n".encode())
    assert status in (200, 404), answer  # the service's answer (user 7 may not be seeded)
    assert target_of(system, request_id) == "users"
    assert upstream_line(system, "users", request_id)["path"] == canonicalise(raw).decoded


@pytest.mark.parametrize("raw", TO_THE_MONOLITH)
def test_a_monolith_path_stays_with_the_monolith_however_spelled(
    system: System, raw: bytes
) -> None:
    request_id = f"monolith-{time.monotonic_ns()}"
    raw_request(system.url, raw, f"X-Request-ID: {request_id}\r\n".encode())
    assert target_of(system, request_id) == "monolith"
    assert upstream_line(system, "monolith", request_id)["path"] == canonicalise(raw).decoded


@pytest.mark.parametrize("raw", AMBIGUOUS_TARGETS)
def test_ambiguous_targets_are_refused_by_nginx_with_a_problem_and_the_request_id(
    system: System, raw: bytes
) -> None:
    request_id = f"refused-{time.monotonic_ns()}"
    status, answer = raw_request(system.url, raw, f"X-Request-ID: {request_id}\r\n".encode())
    assert status == 400
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"content-type: application/problem+json" in head
    problem = json.loads(body_of(answer))
    assert problem["status"] == 400
    # A request line nginx's own parser refuses gets a new id (it has not read the headers).
    kept = request_id if raw not in REFUSED_BY_NGINX_S_PARSER else problem["request_id"]
    assert problem["request_id"] == kept and len(kept) >= 16
    assert f"x-request-id: {kept}".encode() in head
    assert problem["detail"].startswith("the request path is not acceptable")
    found = nginx_targets(system.folder / ".strangler" / "nginx", [kept], patience=2)
    assert found.get(kept) != "users"  # nothing was forwarded


@pytest.mark.parametrize(
    ("method", "path", "content", "status"),
    [
        ("POST", "/healthz", b"", 405),  # nginx's own location
        ("POST", "/api/users", b"x" * (1024 * 1024 + 1), 413),  # over the body limit
    ],
)
def test_nginx_s_own_errors_are_problems_with_the_request_id(
    system: System, method: str, path: str, content: bytes, status: int
) -> None:
    request_id = f"own-{status}-{time.monotonic_ns()}"
    answer = httpx.request(
        method, system.url + path, content=content,
        headers={"X-Request-ID": request_id, "Content-Type": "application/json"}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    assert answer.json()["status"] == status and answer.json()["request_id"] == request_id


@pytest.mark.parametrize(("upstream", "path"), [("users", "/api/users/1"),
                                                ("monolith", "/api/threads/1")])  # fmt: skip
def test_the_request_id_and_the_trace_reach_the_upstream_and_come_back(
    system: System, upstream: str, path: str
) -> None:
    request_id = f"traced-{time.monotonic_ns()}"
    answer = httpx.get(
        system.url + path, timeout=10,
        headers={"X-Request-ID": request_id, "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id
    assert target_of(system, request_id) == upstream
    assert upstream_line(system, upstream, request_id)["trace_id"] == TRACE


def test_a_bad_request_id_is_replaced_and_the_new_one_reaches_the_upstream(
    system: System,
) -> None:
    answer = httpx.get(
        system.url + "/api/users/1", headers={"X-Request-ID": "has spaces"}, timeout=10
    )
    minted = answer.headers["x-request-id"]
    assert minted != "has spaces" and len(minted) == 32
    assert upstream_line(system, "users", minted)["path"] == "/api/users/1"


def test_the_stage_is_users_extracted(system: System) -> None:
    record = json.loads((system.folder / ".strangler" / "run.json").read_text())
    assert record["data_plane"] == "nginx"
    assert Path(system.folder / ".strangler" / "users.sqlite3").exists()
