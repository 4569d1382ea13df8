"""Specification of write freezes: a context's writes held at the proxy during its cutover.

A frozen context's writes wait for the thaw (then follow the table in force), or get 503 with
Retry-After once the wait runs out; reads never wait; a freeze returns only when the context's
writes in flight have finished; it thaws by itself at its maximum; all of it is audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import httpx

from tests.proxy.conftest import RunningProxy, Upstream

TABLE = """
[[routes]]
name = "users.write"
methods = ["POST"]
path = "/api/users"
context = "users"

[[routes]]
name = "users.read"
methods = ["GET"]
path = "/api/users/{id}"
context = "users"

[[routes]]
name = "users.pause"
methods = ["POST"]
path = "/pause"
context = "users"

[[routes]]
name = "polls.write"
methods = ["POST"]
path = "/api/polls"
context = "polls"
"""


def _post_later(
    client: httpx.Client, url: str
) -> tuple[Future[httpx.Response], ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    return pool.submit(client.post, url, json={}), pool


def test_a_frozen_write_waits_for_the_thaw_then_goes_where_the_table_now_says(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        TABLE, {"monolith": monolith.url, "users": users.url}, PROXY_FREEZE_WAIT_SECONDS="20"
    )
    with proxy.admin() as admin:
        frozen = admin.post("/freezes/users", json={"reason": "users cutover", "max_seconds": 30})
        assert frozen.status_code == 200, frozen.text
        assert frozen.json()["context"] == "users"
        held, pool = _post_later(client, f"{proxy.url}/api/users")
        time.sleep(0.3)
        assert not held.done()
        read = client.get(f"{proxy.url}/api/users/1")
        assert read.status_code == 200 and read.json()["answered_by"] == "monolith"
        other = client.post(f"{proxy.url}/api/polls", json={})
        assert other.json()["answered_by"] == "monolith"  # another context's writes flow
        moved = admin.patch(
            "/routes",
            json={
                "routes": {
                    "users.write": {"mode": "service", "data_owner": "service"},
                    "users.read": {"mode": "service", "data_owner": "service"},
                },
                "reason": "users cutover",
            },
        )
        assert moved.status_code == 200, moved.text
        assert not held.done()
        thawed = admin.delete("/freezes/users", params={"reason": "users cutover done"})
        assert thawed.status_code == 200 and thawed.json()["frozen_seconds"] >= 0.3
        answer = held.result(timeout=10)
        pool.shutdown()
    assert answer.status_code == 200 and answer.json()["answered_by"] == "users"


def test_a_write_frozen_longer_than_the_wait_gets_503_with_retry_after(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url}, PROXY_FREEZE_WAIT_SECONDS="0.2")
    with proxy.admin() as admin:
        admin.post("/freezes/users", json={"reason": "cutover", "max_seconds": 30})
        refused = client.post(f"{proxy.url}/api/users", json={})
        assert client.get(f"{proxy.url}/api/users/7").status_code == 200
        admin.delete("/freezes/users")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert refused.json()["type"] == "urn:strangler:problem:unavailable"
    assert refused.headers["x-request-id"]
    assert client.post(f"{proxy.url}/api/users", json={}).status_code == 200


def test_a_freeze_returns_only_once_the_contexts_writes_in_flight_have_finished(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url})
    answers: list[httpx.Response] = []
    writer = threading.Thread(
        target=lambda: answers.append(
            client.post(f"{proxy.url}/pause", params={"seconds": "3"}, json={})
        )
    )
    writer.start()
    with proxy.admin() as admin:
        deadline = time.monotonic() + 10
        while not admin.get("/freezes").json()["writes_in_flight"]:
            assert time.monotonic() < deadline, "the slow write never reached the proxy"
            time.sleep(0.02)
        frozen = admin.post("/freezes/users", json={"reason": "cutover"})
        left = admin.get("/freezes").json()["writes_in_flight"]
        admin.delete("/freezes/users")
    writer.join()
    assert frozen.status_code == 200
    assert frozen.json()["in_flight_at_freeze"] == 1
    assert frozen.json()["drained_seconds"] >= 0.5  # it waited for the write to finish
    assert left == {}
    assert answers[0].status_code == 200  # in flight before the freeze: not held


def test_a_freeze_whose_writes_never_finish_is_abandoned_and_thawed(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url}, PROXY_FREEZE_DRAIN_SECONDS="0.3")
    writer = threading.Thread(
        target=lambda: client.post(f"{proxy.url}/pause", params={"seconds": "4"}, json={})
    )
    writer.start()
    with proxy.admin() as admin:
        deadline = time.monotonic() + 10
        while not admin.get("/freezes").json()["writes_in_flight"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        abandoned = admin.post("/freezes/users", json={"reason": "cutover"})
        assert abandoned.status_code == 504
        assert admin.get("/freezes").json()["frozen"] == []
    writer.join()


def test_a_freeze_thaws_by_itself_at_its_maximum_and_every_step_is_audited(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url})
    with proxy.admin() as admin:
        assert admin.post("/freezes/users", json={"reason": "r", "max_seconds": 1.5}).is_success
        assert admin.post("/freezes/users", json={"reason": "again"}).status_code == 409
        deadline = time.monotonic() + 10
        while admin.get("/freezes").json()["frozen"]:
            assert time.monotonic() < deadline, "the freeze never expired"
            time.sleep(0.05)
        assert client.post(f"{proxy.url}/api/users", json={}).status_code == 200
        assert admin.delete("/freezes/users").status_code == 404
        entries = [e for e in admin.get("/audit").json()["entries"] if e["action"] != "load-file"]
    assert [entry["action"] for entry in entries] == ["freeze", "thaw"]
    assert entries[0]["context"] == "users" and entries[0]["actor"] == "admin"
    assert entries[0]["claimed_actor"] == "pytest"
    assert entries[1]["actor"] == "proxy" and "maximum" in entries[1]["reason"]


def test_bad_freeze_requests_are_refused_with_problems(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url})
    with proxy.admin() as admin:
        assert admin.post("/freezes/users", json={"max_seconds": 5}).status_code == 422
        too_long = admin.post("/freezes/users", json={"reason": "r", "max_seconds": 10_000})
        assert too_long.status_code == 422
        assert admin.post("/freezes/users", content=b"{").status_code == 400
        assert admin.get("/freezes").json()["frozen"] == []


def test_several_routes_move_in_one_atomic_audited_change_or_not_at_all(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, users: Upstream
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url, "users": users.url})
    with proxy.admin() as admin:
        refused = admin.patch(
            "/routes",
            json={
                "routes": {"users.read": {"mode": "service"}, "polls.write": {"mode": "service"}},
                "reason": "polls has no upstream URL",
            },
        )
        assert refused.status_code == 422
        assert admin.get("/routes").json()["version"] == 1
        unknown = admin.patch("/routes", json={"routes": {"nope": {}}, "reason": "x"})
        assert unknown.status_code == 404
        moved = admin.patch(
            "/routes",
            json={
                "routes": {"users.read": {"mode": "service"}, "users.write": {"mode": "service"}},
                "reason": "users cutover",
            },
        )
        assert moved.json()["version"] == 2
        last = admin.get("/audit").json()["entries"][-1]
    assert set(last["routes"]) == {"users.read", "users.write"}
    assert last["routes"]["users.write"]["mode"] == {"from": "monolith", "to": "service"}
