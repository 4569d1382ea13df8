"""Specification of parallel runs (shadow), sticky canaries and automatic canary analysis."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from strangler.plumbing.tokens import TokenSigner
from strangler_proxy.table import TableError, parse_table
from tests.proxy.conftest import ADMIN_TOKEN, TOKEN_SECRET, RunningProxy, Upstream

FORCE_SERVICE = {"X-Strangler-Force": "service", "X-Strangler-Admin-Token": ADMIN_TOKEN}


def route(path: str, mode: str, *extra: str) -> str:
    """One users route named `users.route` (or `data` for /data/{id})."""
    name = "data" if path.startswith("/data") else "users.route"
    return "\n".join(
        ["[[routes]]", f'name = "{name}"', 'methods = ["GET"]', f'path = "{path}"',
         'context = "users"', f'mode = "{mode}"', *extra, ""]
    )  # fmt: skip


def shadow_report(proxy: RunningProxy, name: str, at_least: int) -> dict[str, Any]:
    """The admin's shadow report once `at_least` comparisons (or errors) finished for a route."""
    with proxy.admin() as admin:
        for _ in range(200):
            report = admin.get("/shadow").json()
            stats = report["routes"].get(name, {})
            if stats.get("compared", 0) + stats.get("errors", 0) >= at_least:
                return dict(report)
            time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} shadow comparisons finished for {name}")


def test_shadow_never_changes_the_answer_and_records_mismatches_with_samples(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        route("/api/users/{id}", "shadow"),
        {"monolith": monolith.url, "users": users.url},
        PROXY_SHADOW_NOISE_SAMPLE_EVERY="0",
    )
    for number in range(3):
        answer = client.get(f"{proxy.url}/api/users/{number}", headers={"Host": "forum.local"})
        assert answer.json()["answered_by"] == "monolith"
    report = shadow_report(proxy, "users.route", 3)
    stats = report["routes"]["users.route"]
    assert stats["compared"] == 3 and stats["mismatched"] == 3
    sample = report["samples"][-1]
    assert "answered_by" in sample["fields"]
    assert "headers.x-strangler-shadow" in sample["fields"]  # the marker reached the service
    assert "headers.host" not in sample["fields"]  # the original Host was kept
    assert "headers.x-request-id" not in sample["fields"]
    metrics = client.get(f"{proxy.url}/metrics").text
    assert 'proxy_shadow_comparisons_total{outcome="mismatch",route="users.route"} 3.0' in metrics


def test_ignore_rules_with_reasons_silence_known_differences(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    table = (
        '[[shadow_ignore]]\nfield = "answered_by"\nreason = "each side names itself"\n\n'
        + route(
            "/api/users/{id}", "shadow",
            '[[routes.shadow_ignore]]\nfield = "headers.x-strangler-shadow"\n'
            'reason = "only the shadow copy carries the marker"',
        )
    )  # fmt: skip
    proxy = proxy_factory(
        table, {"monolith": monolith.url, "users": users.url}, PROXY_SHADOW_NOISE_SAMPLE_EVERY="0"
    )
    client.get(f"{proxy.url}/api/users/1")
    client.get(f"{proxy.url}/api/users/2")
    stats = shadow_report(proxy, "users.route", 2)["routes"]["users.route"]
    assert stats["matched"] == 2 and stats["mismatched"] == 0


def test_noise_is_learned_by_asking_the_monolith_twice(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        route("/data/{id}", "shadow"),
        {"monolith": monolith.url, "users": users.url},
        PROXY_SHADOW_NOISE_SAMPLE_EVERY="1",
    )
    client.get(f"{proxy.url}/data/1")
    client.get(f"{proxy.url}/data/2")
    stats = shadow_report(proxy, "data", 2)["routes"]["data"]
    assert stats["mismatched"] == 0
    [learned] = stats["learned_noise"]
    assert learned["field"] == "nonce" and learned["reason"].startswith("learned")


def test_a_difference_the_sync_s_lag_explains_settles_and_a_real_one_stays(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    """The service's replica is one write behind on its first read of each id: asked again, it
    agrees (settled, not a mismatch); a field that always differs still counts."""
    table = route("/replica/{id}", "shadow").replace("users.route", "replica") + route(
        "/api/users/{id}", "shadow"
    )
    proxy = proxy_factory(
        table,
        {"monolith": monolith.url, "users": users.url},
        PROXY_SHADOW_NOISE_SAMPLE_EVERY="0",
        PROXY_SHADOW_RECHECK_DELAY_SECONDS="0.05",
    )
    for number in range(3):
        assert client.get(f"{proxy.url}/replica/lag-{number}").json()["version"] == 2
    client.get(f"{proxy.url}/api/users/1")
    replica = shadow_report(proxy, "replica", 3)["routes"]["replica"]
    echo = shadow_report(proxy, "users.route", 1)["routes"]["users.route"]
    assert (replica["compared"], replica["matched"], replica["settled"]) == (3, 3, 3)
    assert replica["mismatched"] == 0 and replica["raw_mismatched"] == 3
    assert echo["mismatched"] == 1 and echo["settled"] == 0
    metrics = client.get(f"{proxy.url}/metrics").text
    assert 'proxy_shadow_comparisons_total{outcome="settled",route="replica"} 3.0' in metrics


def test_without_rechecks_a_lagging_read_is_a_mismatch(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        route("/replica/{id}", "shadow"),
        {"monolith": monolith.url, "users": users.url},
        PROXY_SHADOW_NOISE_SAMPLE_EVERY="0",
        PROXY_SHADOW_RECHECKS="0",
    )
    client.get(f"{proxy.url}/replica/no-recheck")
    stats = shadow_report(proxy, "users.route", 1)["routes"]["users.route"]
    assert stats["mismatched"] == 1 and stats["settled"] == 0
    assert stats["mismatch_rate"] == 1.0


def test_shadows_are_dropped_not_queued_beyond_their_bound(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, client: httpx.Client
) -> None:
    with socket.socket() as black_hole:  # accepts connections, never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)
        sink = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
        proxy = proxy_factory(
            route("/api/users/{id}", "shadow", "read_timeout = 5.0"),
            {"monolith": monolith.url, "users": sink},
            PROXY_SHADOW_CONCURRENCY="1",
        )
        for number in range(5):
            assert client.get(f"{proxy.url}/api/users/{number}").status_code == 200
        with proxy.admin() as admin:
            stats = admin.get("/shadow").json()["routes"]["users.route"]
    assert stats["dropped"] >= 3


def test_unsafe_methods_cannot_be_shadowed() -> None:
    text = route("/api/users", "shadow").replace('["GET"]', '["GET", "POST"]')
    with pytest.raises(TableError):
        parse_table(text, known_upstreams={"users"})


def side(client: httpx.Client, proxy: RunningProxy, headers: dict[str, str]) -> str:
    return str(client.get(f"{proxy.url}/api/users/1", headers=headers).json()["answered_by"])


@pytest.fixture
def canary(
    proxy_factory: Callable[..., RunningProxy], monolith: Upstream, users: Upstream
) -> Iterator[RunningProxy]:
    yield proxy_factory(
        route("/api/users/{id}", "canary", "canary_percent = 30"),
        {"monolith": monolith.url, "users": users.url},
    )


def test_a_canary_is_sticky_per_user_and_splits_users(
    canary: RunningProxy, client: httpx.Client
) -> None:
    signer = TokenSigner(TOKEN_SECRET)
    sides = {}
    for user in range(1, 41):
        token = {"Authorization": f"Bearer {signer.issue(user)}"}
        seen = {side(client, canary, token) for _ in range(3)}
        assert len(seen) == 1
        sides[user] = seen.pop()
    assert set(sides.values()) == {"users", "monolith"}


def test_raising_the_percentage_never_moves_a_client_back(
    canary: RunningProxy, client: httpx.Client
) -> None:
    clients = [{"X-Client-ID": f"client-{n}"} for n in range(40)]
    before = [side(client, canary, headers) for headers in clients]
    with canary.admin() as admin:
        admin.patch("/routes/users.route", json={"changes": {"canary_percent": 70},
                    "reason": "step"})  # fmt: skip
    after = [side(client, canary, headers) for headers in clients]
    assert all(now == "users" for was, now in zip(before, after, strict=True) if was == "users")
    assert after.count("users") > before.count("users")


def test_an_admin_may_force_a_side(canary: RunningProxy, client: httpx.Client) -> None:
    assert side(client, canary, FORCE_SERVICE) == "users"
    forced_back = {**FORCE_SERVICE, "X-Strangler-Force": "monolith"}
    assert side(client, canary, forced_back) == "monolith"


ANALYSED = """
[[shadow_ignore]]
field = "answered_by"
reason = "each side names itself"

[[shadow_ignore]]
field = "headers.x-strangler-shadow"
reason = "only the shadow copy carries the marker"

[[routes]]
name = "{name}"
methods = ["GET"]
path = "{path}"
context = "users"
mode = "canary"
canary_percent = 0
data_owner = "monolith"
[routes.analysis]
steps = [10, 50, 100]
min_requests = 5
max_error_rate = 0.1
max_p95_ratio = 1000
"""


def run_analysis(proxy: RunningProxy) -> list[dict[str, Any]]:
    with proxy.admin() as admin:
        return list(admin.post("/analysis/run").json()["decisions"])


def test_analysis_steps_a_healthy_canary_up_and_records_each_decision(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        ANALYSED.format(name="get-user", path="/api/users/{id}"),
        {"monolith": monolith.url, "users": users.url},
        PROXY_SHADOW_NOISE_SAMPLE_EVERY="0",
    )
    [first] = run_analysis(proxy)
    assert (first["decision"], first["to_percent"]) == ("step", 10)
    [waiting] = run_analysis(proxy)
    assert waiting["decision"] == "wait"
    for _ in range(6):
        client.get(f"{proxy.url}/api/users/1", headers=FORCE_SERVICE)
        client.get(
            f"{proxy.url}/api/users/1", headers={**FORCE_SERVICE, "X-Strangler-Force": "monolith"}
        )
    [second] = run_analysis(proxy)
    assert (second["decision"], second["to_percent"]) == ("step", 50)
    with proxy.admin() as admin:
        audit = admin.get("/audit").json()["entries"]
    decisions = [entry["decision"] for entry in audit if entry["action"] == "analysis-decision"]
    assert decisions == ["step", "wait", "step"]


def test_analysis_rolls_a_failing_canary_back_and_stops(
    proxy_factory: Callable[..., RunningProxy],
    monolith: Upstream,
    users: Upstream,
    client: httpx.Client,
) -> None:
    proxy = proxy_factory(
        ANALYSED.format(name="failing", path="/fault/status/{code}"),
        {"monolith": monolith.url, "users": users.url},
    )
    run_analysis(proxy)
    for _ in range(6):
        client.get(f"{proxy.url}/fault/status/500", headers=FORCE_SERVICE)
    [decision] = run_analysis(proxy)
    assert (decision["decision"], decision["to_percent"]) == ("rollback", 0)
    assert "error rate" in decision["reason"]
    assert run_analysis(proxy) == []  # halted until an operator changes the route
    with proxy.admin() as admin:
        assert admin.get("/routes").json()["table"]["routes"][0]["canary_percent"] == 0
