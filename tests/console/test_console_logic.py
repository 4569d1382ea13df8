"""The console's logic, in process: who signs in, what each button runs, what the page is told."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from strangler.console.actions import ActionRefused, command_for
from strangler.console.app import Live, create_app
from strangler.console.sessions import COOKIE, SessionCsrf, Sessions, cookie_header
from strangler.console.settings import ConsoleSettings
from strangler.console.traces import calls, waterfall
from strangler.console.traffic import flows, parse
from strangler.plumbing.trace_spool import SpanRecord
from strangler.runtime.home import Home
from strangler.state import MigrationState, Moving
from strangler.workspace import find_workspace
from strangler_proxy.admin_tokens import AdminTokens

TOKEN = "the-admin-token-of-this-system"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sessions(clock: Clock | None = None) -> Sessions:
    return Sessions(AdminTokens({"admin": TOKEN}), 60.0, 2, clock or Clock())


def test_only_the_admin_token_signs_in() -> None:
    found = sessions()
    assert found.sign_in("not-the-token") is None
    session = found.sign_in(TOKEN)
    assert session is not None and session.actor == "admin"
    assert found.find(session.id) == session


def test_a_session_ends_when_it_expires() -> None:
    clock = Clock()
    found = sessions(clock)
    session = found.sign_in(TOKEN)
    assert session is not None
    clock.now = 61.0
    assert found.find(session.id) is None


def test_the_oldest_session_goes_when_there_are_too_many() -> None:
    found = sessions()
    first, second, third = (found.sign_in(TOKEN) for _ in range(3))
    assert first is not None and second is not None and third is not None
    assert found.find(first.id) is None and found.find(third.id) == third


def test_an_action_needs_the_sessions_own_anti_forgery_token() -> None:
    found = sessions()
    session, other = found.sign_in(TOKEN), found.sign_in(TOKEN)
    assert session is not None and other is not None
    csrf = SessionCsrf(found)
    cookie = f"{COOKIE}={session.id}"
    assert csrf.verify({"cookie": cookie, "x-csrf-token": session.csrf})
    assert not csrf.verify({"cookie": cookie, "x-csrf-token": other.csrf})
    assert not csrf.verify({"cookie": cookie})
    assert not csrf.verify({"x-csrf-token": session.csrf})


def test_the_session_cookie_is_http_only_and_same_site_strict() -> None:
    session = sessions().sign_in(TOKEN)
    header = cookie_header(session, secure=True, max_age=60)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" in header


@pytest.fixture(scope="module")
def migration():  # type: ignore[no-untyped-def]
    return find_workspace().migration()


def test_continue_extracts_the_next_stages_context(migration) -> None:  # type: ignore[no-untyped-def]
    assert command_for("continue", MigrationState(stage=0), migration) == ["extract", "users"]


def test_continue_resumes_the_move_under_way(migration) -> None:  # type: ignore[no-untyped-def]
    moving = Moving(from_stage=1, to_stage=2, started_at="now", passed=["schema"])
    state = MigrationState(stage=1, moving=moving)
    assert command_for("continue", state, migration) == ["stage", "goto", "2"]


def test_roll_back_gives_the_last_context_back(migration) -> None:  # type: ignore[no-untyped-def]
    assert command_for("rollback", MigrationState(stage=2), migration) == ["rollback", "polls"]
    with pytest.raises(ActionRefused):
        command_for("rollback", MigrationState(stage=0), migration)


def test_promote_goes_to_the_stage_asked_for(migration) -> None:  # type: ignore[no-untyped-def]
    assert command_for("promote", MigrationState(stage=1), migration, stage=3) == [
        "stage", "goto", "3",
    ]  # fmt: skip
    with pytest.raises(ActionRefused):
        command_for("promote", MigrationState(stage=3), migration, stage=3)


def test_verify_runs_the_data_paths_verify_of_a_context(migration) -> None:  # type: ignore[no-untyped-def]
    assert command_for("verify", MigrationState(), migration, context="forum") == [
        "data", "verify", "forum",
    ]  # fmt: skip
    with pytest.raises(ActionRefused):
        command_for("verify", MigrationState(), migration, context="nothing")


EXPOSITION = """# TYPE proxy_requests_total counter
proxy_requests_total{{route="users.get_user",target="users",method="GET",status="200"}} {ok}
proxy_requests_total{{route="users.get_user",target="users",method="GET",status="502"}} {bad}
# TYPE proxy_request_duration_seconds histogram
proxy_request_duration_seconds_bucket{{route="users.get_user",target="users",le="0.01"}} {fast}
proxy_request_duration_seconds_bucket{{route="users.get_user",target="users",le="0.1"}} {all}
proxy_request_duration_seconds_bucket{{route="users.get_user",target="users",le="+Inf"}} {all}
proxy_request_duration_seconds_sum{{route="users.get_user",target="users"}} 1.0
proxy_request_duration_seconds_count{{route="users.get_user",target="users"}} {all}
"""


def test_traffic_is_the_rate_error_share_and_latency_between_two_scrapes() -> None:
    before = parse(EXPOSITION.format(ok=100, bad=0, fast=100, all=100), at=10.0)
    after = parse(EXPOSITION.format(ok=190, bad=10, fast=150, all=200), at=20.0)
    (flow,) = flows(before, after)
    assert flow.requests_per_second == 10.0
    assert flow.error_ratio == 0.1
    assert flow.p50_ms == 10.0  # half of the interval's 100 requests answered within 10 ms
    assert flow.p95_ms is not None and 10.0 < flow.p95_ms <= 100.0


def span(span_id: str, parent: str | None, service: str, start: int, end: int) -> SpanRecord:
    name = f"work of {service}"
    return SpanRecord("t" * 32, span_id, parent, name, "server", service, start, end)


def test_a_waterfall_puts_each_span_under_its_parent_on_the_traces_time_axis() -> None:
    spans = [
        span("b", "a", "monolith", 2_000_000, 8_000_000),
        span("a", None, "proxy", 1_000_000, 9_000_000),
        span("c", "b", "monolith", 3_000_000, 4_000_000),
    ]
    found = waterfall(spans, "t" * 32)
    assert found is not None
    rows = [(row["span_id"], row["depth"], row["offset_ms"]) for row in found["spans"]]
    assert rows == [("a", 0, 0.0), ("b", 1, 1.0), ("c", 2, 2.0)]


def test_a_span_whose_parent_is_another_processes_is_a_call_between_them() -> None:
    spans = [span("a", None, "proxy", 0, 9), span("b", "a", "forum", 1, 8),
             span("c", "b", "forum", 2, 3), span("d", "b", "users", 4, 5)]  # fmt: skip
    assert {(call.caller, call.callee, call.count) for call in calls(spans)} == {
        ("proxy", "forum", 1), ("forum", "users", 1),
    }  # fmt: skip


@pytest.fixture
def console(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = Home(tmp_path / ".strangler", find_workspace(), reads_environment=False)
    settings = ConsoleSettings(home=home.root, admin_token=TOKEN, refresh_seconds=0.2)  # type: ignore[arg-type]
    with TestClient(create_app(settings, home), base_url="http://console.test") as client:
        yield client


def signed_in(client: TestClient) -> str:
    answer = client.post("/signin", data={"token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    token: str = client.get("/api/session").json()["csrf_token"]
    return token


def test_the_page_and_its_api_need_a_session(console: TestClient) -> None:
    assert console.get("/", follow_redirects=False).headers["location"] == "/signin"
    answer = console.get("/api/state")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"]


def test_a_wrong_token_does_not_sign_in(console: TestClient) -> None:
    answer = console.post("/signin", data={"token": "guess"}, follow_redirects=False)
    assert answer.headers["location"] == "/signin?failed=1"
    assert "set-cookie" not in answer.headers


def test_an_action_without_the_anti_forgery_token_is_refused(console: TestClient) -> None:
    signed_in(console)
    answer = console.post(
        "/api/actions", json={"action": "check"}, headers={"origin": "http://console.test"}
    )
    assert answer.status_code == 403


def test_an_action_from_another_site_is_refused_even_with_the_token(console: TestClient) -> None:
    token = signed_in(console)
    answer = console.post(
        "/api/actions", json={"action": "check"},
        headers={"x-csrf-token": token, "sec-fetch-site": "cross-site"},
    )  # fmt: skip
    assert answer.status_code == 403


def test_a_sign_in_from_another_site_is_refused(console: TestClient) -> None:
    answer = console.post(
        "/signin", data={"token": TOKEN}, headers={"origin": "http://evil.test"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 403


def test_an_unknown_action_is_a_problem(console: TestClient) -> None:
    token = signed_in(console)
    answer = console.post("/api/actions", json={"action": "dance"}, headers={"x-csrf-token": token})
    assert answer.status_code == 409 and "no action 'dance'" in answer.json()["detail"]


def test_a_large_body_is_refused(console: TestClient) -> None:
    token = signed_in(console)
    answer = console.post("/api/actions", content=b"x" * 20_000, headers={"x-csrf-token": token})
    assert answer.status_code == 413


def test_the_state_says_nothing_runs_in_an_empty_folder(console: TestClient) -> None:
    signed_in(console)
    document = console.get("/api/state").json()
    assert document["running"] is False
    assert any("nothing is running" in problem for problem in document["problems"])
    assert document["journey"]["stage"] == 0


def test_health_and_metrics_need_no_session(console: TestClient) -> None:
    assert console.get("/healthz").json() == {"status": "ok"}
    assert "http_requests_total" in console.get("/metrics").text


def test_an_idle_console_gathers_nothing_until_someone_looks() -> None:
    async def scenario() -> None:
        live = Live()
        waiting = asyncio.create_task(live.demand())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nobody looks: no gathering
        live.want()  # a page asks for the document once
        await asyncio.wait_for(waiting, 1.0)
        again = asyncio.create_task(live.demand())
        await asyncio.sleep(0.05)
        assert not again.done()  # that one request was served: idle again
        again.cancel()
        live.watchers = 1  # a stream is open: gather again and again
        await asyncio.wait_for(live.demand(), 1.0)
        await asyncio.wait_for(live.demand(), 1.0)

    asyncio.run(scenario())
