"""Specification of how long the proxy waits for an upstream: reads briefly, writes longer.

A safe request to a hung service must give up in time for the fallback to the monolith to
answer the client, so reads have a short default; writes never fall back and get a longer
one; a route's own `read_timeout` wins over both. End to end with a service that accepts
connections and never answers (a listening socket nobody reads), and in process.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import ValidationError

from strangler_proxy.proxy import read_timeout
from strangler_proxy.settings import ProxySettings
from strangler_proxy.table import Route
from tests.proxy.conftest import RunningProxy, Upstream

SETTINGS = ProxySettings(_env_file=None)  # type: ignore[call-arg]


def users_route(mode: str = "service", **fields: str) -> str:
    extra = "\n".join(f"{key} = {value}" for key, value in fields.items())
    return f"""
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{{id}}"
context = "users"
mode = "{mode}"
data_owner = "monolith"
{extra}

[[routes]]
name = "users.pause"
methods = ["GET", "POST"]
path = "/pause"
context = "users"
mode = "{mode}"
{extra}
"""


@pytest.fixture
def hung_service() -> Iterator[str]:
    """The URL of a service that accepts connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_read_from_a_hung_service_falls_back_to_the_monolith_within_the_default(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, hung_service: str
) -> None:
    proxy = proxy_factory(users_route(), {"monolith": monolith.url, "users": hung_service})
    # The service never answers: only the default read timeout (5 s) can end the wait, and
    # the client gives up long before the 30 s it used to take.
    with httpx.Client(timeout=4 * SETTINGS.safe_read_timeout) as client:
        answer = client.get(f"{proxy.url}/api/users/1")
        metrics = client.get(f"{proxy.url}/metrics").text
    assert answer.status_code == 200 and answer.json()["answered_by"] == "monolith"
    assert 'reason="timeout",route="users.get_user",upstream="users"' in metrics


def test_a_write_waits_longer_than_a_read(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, users: Upstream
) -> None:
    proxy = proxy_factory(
        users_route(), {"monolith": monolith.url, "users": users.url},
        PROXY_SAFE_READ_TIMEOUT="0.3", PROXY_WRITE_READ_TIMEOUT="10",
    )  # fmt: skip
    with httpx.Client(timeout=20) as client:
        read = client.get(f"{proxy.url}/pause", params={"seconds": "1"})
        write = client.post(f"{proxy.url}/pause", params={"seconds": "1"})
    assert read.status_code == 504  # gave up after 0.3 s (the service owns this data)
    assert write.status_code == 200 and write.json()["answered_by"] == "users"


def test_a_routes_own_read_timeout_wins(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, users: Upstream
) -> None:
    proxy = proxy_factory(
        users_route(read_timeout="0.3", fallback='"none"'),
        {"monolith": monolith.url, "users": users.url},
        PROXY_WRITE_READ_TIMEOUT="10",
    )
    with httpx.Client(timeout=20) as client:
        write = client.post(f"{proxy.url}/pause", params={"seconds": "1"})
    assert write.status_code == 504
    assert write.headers["content-type"] == "application/problem+json"


def route(**fields: object) -> Route:
    return Route.model_validate({"name": "r", "methods": ["GET", "POST"], "path": "/r", **fields})


@pytest.mark.parametrize(
    ("method", "fields", "seconds"),
    [
        ("GET", {}, 5.0),
        ("HEAD", {}, 5.0),
        ("OPTIONS", {}, 5.0),
        ("POST", {}, 30.0),
        ("DELETE", {}, 30.0),
        ("GET", {"read_timeout": 12.0}, 12.0),
        ("POST", {"read_timeout": 2.0}, 2.0),
    ],
)
def test_the_read_timeout_is_the_routes_else_the_default_for_its_method(
    method: str, fields: dict[str, object], seconds: float
) -> None:
    assert read_timeout(route(**fields), method, SETTINGS) == seconds


def test_an_unmatched_request_gets_its_methods_default() -> None:
    assert read_timeout(None, "GET", SETTINGS) == SETTINGS.safe_read_timeout
    assert read_timeout(None, "PATCH", SETTINGS) == SETTINGS.write_read_timeout


def test_the_old_single_read_timeout_setting_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="PROXY_SAFE_READ_TIMEOUT"):
        ProxySettings(_env_file=None, read_timeout=30)  # type: ignore[call-arg]
