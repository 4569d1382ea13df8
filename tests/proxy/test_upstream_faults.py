"""Specification of what clients get when an upstream fails: fallback, problems, no crash.

Every fault is real: a port nobody listens on, a process that is killed, a server that closes
the socket mid-body, one that answers too slowly, one that answers 5xx.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from strangler.runtime.processes import free_port, start
from tests.proxy.conftest import HERE, RunningProxy, Upstream


def table(users_path: str = "/api/users/{id}", **route: str) -> str:
    """Users routes in mode service while the monolith still owns the data (unless told)."""
    fields = {"data_owner": '"monolith"', **route}
    extra = "\n".join(f"{key} = {value}" for key, value in fields.items())
    return f"""
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "{users_path}"
context = "users"
mode = "service"
{extra}

[[routes]]
name = "users.change"
methods = ["POST", "PATCH"]
path = "{users_path}"
context = "users"
mode = "service"
{extra}
"""


def assert_problem(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["request_id"] == answer.headers["x-request-id"]


def wait_until(condition: Callable[[], bool], attempts: int = 200) -> bool:
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def nobody() -> str:
    """The URL of a loopback port nobody listens on."""
    return f"http://127.0.0.1:{free_port()}"


def test_a_refused_service_read_falls_back_to_the_monolith(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    nobody: str,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(table(), {"monolith": monolith.url, "users": nobody})
    answer = client.get(f"{proxy.url}/api/users/1")
    assert answer.status_code == 200
    assert answer.json()["answered_by"] == "monolith"
    metrics = client.get(f"{proxy.url}/metrics").text
    assert (
        'proxy_fallbacks_total{reason="refused",route="users.get_user",upstream="users"}' in metrics
    )


def test_a_refused_service_write_is_a_502_problem_not_a_fallback(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    nobody: str,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(table(), {"monolith": monolith.url, "users": nobody})
    assert_problem(client.post(f"{proxy.url}/api/users/1", json={"a": 1}), 502)


def test_no_fallback_once_the_service_owns_the_data(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    nobody: str,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        table(data_owner='"service"'), {"monolith": monolith.url, "users": nobody}
    )
    assert_problem(client.get(f"{proxy.url}/api/users/1"), 502)


def test_a_route_may_refuse_fallback(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    nobody: str,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(table(fallback='"none"'), {"monolith": monolith.url, "users": nobody})
    assert_problem(client.get(f"{proxy.url}/api/users/1"), 502)


def test_a_service_5xx_on_a_read_falls_back_and_on_a_write_is_passed_on(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        table("/fault/status/{code}"), {"monolith": monolith.url, "users": users.url}
    )
    read = client.get(f"{proxy.url}/fault/status/503")
    assert read.json()["answered_by"] == "monolith"
    write = client.post(f"{proxy.url}/fault/status/500")
    assert write.status_code == 500 and write.json()["answered_by"] == "users"


def test_a_slow_service_times_out_with_a_504_problem(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        table("/fault/slow", read_timeout="0.3", fallback='"none"'),
        {"monolith": monolith.url, "users": users.url},
    )
    assert_problem(client.get(f"{proxy.url}/fault/slow"), 504)
    assert_problem(client.post(f"{proxy.url}/fault/slow"), 504)
    assert client.get(f"{proxy.url}/healthz").status_code == 200


def test_an_upstream_that_resets_mid_body_aborts_only_that_response(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory("", {"monolith": monolith.url})
    for _ in range(5):
        with pytest.raises(httpx.HTTPError):
            client.get(f"{proxy.url}/fault/reset")
    assert proxy.process.is_running
    assert client.get(f"{proxy.url}/api/threads").json()["answered_by"] == "monolith"
    metrics = client.get(f"{proxy.url}/metrics").text
    assert (
        'proxy_upstream_failures_total{reason="broken-mid-response",upstream="monolith"} 5.0'
        in metrics
    )


def test_an_upstream_process_dying_mid_request_is_a_502_and_the_proxy_lives_on(
    proxy_factory: Callable[..., RunningProxy],
    tmp_path: Path,
    monolith: Upstream,
    client: httpx.Client,
) -> None:
    doomed = _start_upstream_on("users", free_port(), tmp_path)
    proxy = proxy_factory(table("/fault/exit"), {"monolith": monolith.url, "users": doomed.url})
    assert_problem(client.post(f"{proxy.url}/fault/exit"), 502)
    assert client.get(f"{proxy.url}/healthz").status_code == 200
    doomed.kill()


def _start_upstream_on(name: str, port: int, tmp_path: Path) -> Upstream:
    process = start(
        f"upstream-{name}",
        [sys.executable, str(HERE / "upstream_app.py"), str(port), name],
        {},
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path / "logs" / f"{name}-{port}-{time.monotonic_ns()}.log",
    )
    process.wait_healthy()
    return Upstream(name, f"http://127.0.0.1:{port}", process)


@pytest.fixture
def restartable_users(tmp_path: Path) -> Iterator[tuple[int, list[Upstream]]]:
    port = free_port()
    started = [_start_upstream_on("users", port, tmp_path)]
    yield port, started
    for upstream in started:
        upstream.kill()


def test_a_killed_service_trips_its_breaker_and_a_restarted_one_is_used_again(
    proxy_factory: Callable[..., RunningProxy],
    tmp_path: Path,
    monolith: Upstream,
    restartable_users: tuple[int, list[Upstream]],
    client: httpx.Client,
) -> None:
    port, started = restartable_users
    proxy = proxy_factory(
        table(),
        {"monolith": monolith.url, "users": started[0].url},
        PROXY_BREAKER_FAILURE_THRESHOLD="3",
        PROXY_BREAKER_OPEN_SECONDS="0.5",
    )
    assert client.get(f"{proxy.url}/api/users/1").json()["answered_by"] == "users"

    started[0].kill()
    for _ in range(3):
        assert client.get(f"{proxy.url}/api/users/1").json()["answered_by"] == "monolith"
    with proxy.admin() as admin:
        assert admin.get("/breakers").json()["upstreams"]["users"]["state"] in ("open", "half_open")
    metrics = client.get(f"{proxy.url}/metrics").text
    states = {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "proxy_breaker_state"
        for sample in family.samples
        if sample.labels["upstream"] == "users"
    }
    assert states["closed"] == 0.0 and states["open"] + states["half_open"] == 1.0

    started.append(_start_upstream_on("users", port, tmp_path))
    assert wait_until(
        lambda: client.get(f"{proxy.url}/api/users/1").json()["answered_by"] == "users"
    )
    with proxy.admin() as admin:
        assert admin.get("/breakers").json()["upstreams"]["users"]["state"] == "closed"
