"""The proxy's decisions, in process: which side answers, when a read falls back to the
monolith, when the breaker stops asking a failing service, what a frozen write gets. The
upstreams are in-memory functions (`fake_upstreams`); the proxy is the real ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from strangler_proxy.app import ProxyApp, create_app
from strangler_proxy.settings import ProxySettings
from tests.proxy.fake_upstreams import FakeUpstreams, json_answer, refused

MONOLITH, USERS = "http://monolith", "http://users"
# Reads of users go to the service while the monolith still owns the data (the canary at
# 100%, before cutover): a failed read may fall back. Writes go to the owner only.
TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "service"
data_owner = "monolith"

[[routes]]
name = "users.sign_up"
methods = ["POST"]
path = "/api/users"
context = "users"
mode = "service"
data_owner = "service"
"""


Answer = tuple[int, dict[str, str], bytes]


def monolith(method: str, target: str, headers: object, body: bytes) -> Answer:
    return json_answer(200 if method == "GET" else 201, b'{"from": "monolith"}')


@contextmanager
def proxy(
    tmp_path: Path, users: object, **settings: object
) -> Iterator[tuple[ProxyApp, FakeUpstreams]]:
    table = tmp_path / "table.toml"
    table.write_text(TABLE)
    upstreams = FakeUpstreams({MONOLITH: monolith, USERS: users})  # type: ignore[dict-item]
    app = create_app(
        ProxySettings(
            monolith_url=MONOLITH, upstreams={"users": USERS}, route_table_path=table,
            audit_log_path=tmp_path / "audit.jsonl", access_log=False,
            table_watch_seconds=0, analysis_interval_seconds=0, admin_token="admin-0123456789",
            **settings,  # type: ignore[arg-type]
        ),
        upstreams,
    )  # fmt: skip
    yield app, upstreams


def ask(app: ProxyApp, *requests: tuple[str, str]) -> list[httpx.Response]:
    async def send() -> list[httpx.Response]:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
                return [await client.request(method, path, json={} if method == "POST" else None)
                        for method, path in requests]  # fmt: skip
        finally:
            await app.shutdown()

    return asyncio.run(send())


def test_a_read_the_service_fails_falls_back_to_the_monolith(tmp_path: Path) -> None:
    with proxy(tmp_path, refused) as (app, upstreams):
        [answer] = ask(app, ("GET", "/api/users/7"))
    assert answer.status_code == 200 and answer.json() == {"from": "monolith"}
    assert upstreams.asked_of(USERS) == 1 and upstreams.asked_of(MONOLITH) == 1


def test_a_write_the_service_fails_is_never_sent_to_the_monolith(tmp_path: Path) -> None:
    with proxy(tmp_path, refused) as (app, upstreams):
        [answer] = ask(app, ("POST", "/api/users"))
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert upstreams.asked_of(MONOLITH) == 0


def test_after_enough_failures_the_breaker_stops_asking_the_service(tmp_path: Path) -> None:
    with proxy(tmp_path, refused, breaker_failure_threshold=3) as (app, upstreams):
        answers = ask(app, *[("GET", f"/api/users/{n}") for n in range(1, 7)])
    assert [answer.status_code for answer in answers] == [200] * 6
    assert upstreams.asked_of(USERS) == 3  # then the breaker opened
    assert upstreams.asked_of(MONOLITH) == 6


def test_a_service_that_answers_serves_its_routes(tmp_path: Path) -> None:
    def users(method: str, target: str, headers: object, body: bytes) -> Answer:
        return json_answer(200, b'{"from": "users"}')

    with proxy(tmp_path, users) as (app, upstreams):
        [answer] = ask(app, ("GET", "/api/users/7"))
    assert answer.json() == {"from": "users"}
    assert upstreams.asked_of(MONOLITH) == 0
    assert "x-request-id" in answer.headers


@pytest.mark.parametrize("path", ["/api/users/7%2Fadmin", "/api/users/7%5Cx"])
def test_an_encoded_slash_or_backslash_is_refused_before_any_upstream(
    tmp_path: Path, path: str
) -> None:
    with proxy(tmp_path, refused) as (app, upstreams):
        [answer] = ask(app, ("GET", path))
    assert answer.status_code == 400
    assert upstreams.asked == []
