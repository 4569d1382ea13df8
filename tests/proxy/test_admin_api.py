"""Specification of the admin API: protected, atomic changes, audit log, bad tables refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx

from tests.proxy.conftest import ADMIN_TOKEN, RunningProxy, Upstream

TABLE = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{id}"
context = "users"
mode = "monolith"
"""


def answered_by(client: httpx.Client, proxy: RunningProxy, path: str = "/api/users/1") -> str:
    return str(client.get(f"{proxy.url}{path}").json()["answered_by"])


def test_the_admin_api_needs_the_admin_token(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url})
    assert client.get(f"{proxy.url}/_admin/routes").status_code == 401
    wrong = client.get(f"{proxy.url}/_admin/routes", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    right = client.get(
        f"{proxy.url}/_admin/routes", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert right.json()["table"]["routes"][0]["name"] == "users.get_user"


def test_a_route_change_applies_at_once_and_is_audited(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url, "users": users.url})
    assert answered_by(client, proxy) == "monolith"
    with proxy.admin() as admin:
        changed = admin.patch(
            "/routes/users.get_user",
            json={"changes": {"mode": "service"}, "reason": "users cutover", "actor": "ada"},
        )
        assert changed.status_code == 200 and changed.json()["version"] == 2
        assert answered_by(client, proxy) == "users"
        entries = admin.get("/audit").json()["entries"]
    change = entries[-1]
    # The actor is the token's name; what the caller says of itself is only a claim.
    assert change["actor"] == "admin" and change["claimed_actor"] == "ada"
    assert change["reason"] == "users cutover"
    assert change["changes"] == {"mode": {"from": "monolith", "to": "service"}}
    on_disk = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    assert on_disk[-1]["reason"] == "users cutover"


def test_an_invalid_change_is_refused_and_the_last_good_table_keeps_serving(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url, "users": users.url})
    with proxy.admin() as admin:
        refused = admin.patch(
            "/routes/users.get_user",
            json={"changes": {"mode": "canary", "canary_percent": 250}, "reason": "oops"},
        )
        assert refused.status_code == 422
        assert any("canary_percent" in problem for problem in refused.json()["problems"])
        assert admin.patch("/routes/nope", json={"changes": {}, "reason": "x"}).status_code == 404
        assert admin.patch("/routes/users.get_user", json={"changes": {}}).status_code == 422
        assert admin.get("/routes").json()["version"] == 1
        assert admin.get("/audit").json()["entries"][-1]["outcome"] == "refused"
    assert answered_by(client, proxy) == "monolith"


def test_a_bad_table_file_is_refused_on_reload_with_its_line_and_the_old_one_serves(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url, "users": users.url})
    proxy.table_path.write_text(TABLE.replace('mode = "monolith"', 'mode = "sideways"'))
    with proxy.admin() as admin:
        refused = admin.post("/table/reload")
        assert refused.status_code == 422
        assert any(":7:" in problem and "mode" in problem for problem in refused.json()["problems"])
        assert answered_by(client, proxy) == "monolith"
        proxy.table_path.write_text(TABLE.replace('mode = "monolith"', 'mode = "service"'))
        assert admin.post("/table/reload").status_code == 200
    assert answered_by(client, proxy) == "users"


def test_a_bad_whole_table_sent_by_admin_is_refused(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url})
    refused = proxy.put_table(
        "[[routes]]\nname = 'x'\nmethods = ['GET']\npath = '/a'\nmode = 'service'\n"
    )
    assert refused.status_code == 422
    assert refused.json()["problems"]
    with proxy.admin() as admin:
        assert admin.get("/routes").json()["version"] == 1


def test_a_proxy_with_a_bad_table_file_refuses_to_start(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream
) -> None:
    import pytest

    from strangler.runtime.processes import ProcessFailed

    with pytest.raises(ProcessFailed):
        proxy_factory("[[routes]]\nname = 'x'\n", {"monolith": monolith.url})


def test_changes_do_not_drop_requests_in_flight(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, users: Upstream
) -> None:
    proxy = proxy_factory(TABLE, {"monolith": monolith.url, "users": users.url})
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                answer = http.get(f"{proxy.url}/api/users/1")
                if answer.status_code != 200:
                    failures.append(str(answer.status_code))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    with proxy.admin() as admin:
        for number in range(20):
            mode = "service" if number % 2 == 0 else "monolith"
            admin.patch(
                "/routes/users.get_user", json={"changes": {"mode": mode}, "reason": "flip"}
            )
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
