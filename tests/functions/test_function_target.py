"""A route whose side is a function: the proxy (the real ASGI app, in process) invokes the
handler in its pool of worker processes and answers with its result; every way a function can
fail is a problem+json with the request id, never a hang. One end-to-end test runs the same
through a real proxy process. The handlers are the tests' own (`tests.functions.handlers`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx

from strangler_proxy.app import ProxyApp, create_app
from strangler_proxy.settings import ProxySettings
from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_upstreams import FakeUpstreams, json_answer

HANDLERS = "tests.functions.handlers"
TABLE = """
[upstreams]
things = "function:tests.functions.handlers:{handler}"

[[routes]]
name = "things.any"
methods = {methods}
path = "/api/things/{{thing_id}}"
context = "things"
mode = "{mode}"
data_owner = "{owner}"
read_timeout = {timeout}
"""


def table(handler: str, timeout: float = 10, mode: str = "service") -> str:
    owner, methods = ("service", '["*"]') if mode == "service" else ("monolith", '["GET"]')
    return TABLE.format(
        handler=handler, timeout=timeout, mode=mode, owner=owner, methods=methods
    )


def monolith(
    method: str, target: str, headers: object, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return json_answer(200, b'{"from": "monolith"}')


def proxy_app(
    tmp_path: Path, handler: str, timeout: float = 10, workers: int = 1, mode: str = "service"
) -> ProxyApp:
    path = tmp_path / "table.toml"
    path.write_text(table(handler, timeout, mode))
    return create_app(
        ProxySettings(
            monolith_url="http://monolith", route_table_path=path,
            audit_log_path=tmp_path / "audit.jsonl", access_log=False, table_watch_seconds=0,
            analysis_interval_seconds=0, function_workers=workers,
            # Learning noise and rechecking a difference ask the monolith again over HTTP.
            shadow_noise_sample_every=0, shadow_rechecks=0,
            function_env={f"{HANDLERS}:echo": {"ECHO_GREETING": "hello"}},
        ),
        FakeUpstreams({"http://monolith": monolith}),  # type: ignore[dict-item]
    )  # fmt: skip


Call = Callable[[httpx.AsyncClient], object]


def run(app: ProxyApp, *calls: Call) -> list[object]:
    async def go() -> list[object]:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://proxy", timeout=30
            ) as client:
                return [await call(client) for call in calls]  # type: ignore[misc]
        finally:
            await app.shutdown()

    return asyncio.run(go())


def get(path: str, **options: object) -> Call:
    return lambda client: client.get(path, **options)  # type: ignore[arg-type]


def metrics() -> Call:
    return lambda client: client.get("/metrics")


def test_a_request_reaches_the_function_as_a_gateway_event_and_its_result_comes_back(
    tmp_path: Path,
) -> None:
    app = proxy_app(tmp_path, "echo")
    [answer] = run(
        app,
        lambda client: client.post(
            "/api/things/41?tag=a&tag=b",
            content=b'{"n": 1}',
            headers={
                "content-type": "application/json",
                "x-request-id": "req-echo-1",
                "cookie": "flavour=oat",
            },
        ),
    )
    assert isinstance(answer, httpx.Response) and answer.status_code == 200
    echoed = answer.json()
    event = echoed["event"]
    assert event["routeKey"] == "POST /api/things/{thing_id}"
    assert event["pathParameters"] == {"thing_id": "41"}
    assert event["queryStringParameters"] == {"tag": "a,b"}
    assert event["cookies"] == ["flavour=oat"] and event["body"] == '{"n": 1}'
    assert event["requestContext"]["requestId"] == "req-echo-1"
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.9"
    assert echoed["request_id"] == "req-echo-1"
    assert echoed["environment"] == {"ECHO_GREETING": "hello"}
    assert answer.headers["x-echo"] == "yes" and answer.headers["x-request-id"] == "req-echo-1"
    assert answer.headers.get_list("x-many") == ["one", "two"]
    assert answer.headers.get_list("set-cookie") == ["flavour=oat; Path=/", "size=big"]


def test_a_worker_imports_once_and_serves_the_next_invocations_warm(tmp_path: Path) -> None:
    app = proxy_app(tmp_path, "echo")
    *answers, exposed = run(
        app, get("/api/things/1"), get("/api/things/2"), get("/api/things/3"), metrics()
    )
    pids = {answer.json()["pid"] for answer in answers}  # type: ignore[attr-defined]
    assert len(pids) == 1
    text = exposed.text  # type: ignore[attr-defined]
    echo = f'function="{HANDLERS}:echo"'
    assert f"proxy_function_cold_start_seconds_count{{{echo}}} 1.0" in text
    assert f'proxy_function_invocation_seconds_count{{{echo},start="warm"}} 2.0' in text
    assert f"proxy_function_import_seconds_count{{{echo}}} 1.0" in text
    assert f"proxy_function_worker_start_seconds_count{{{echo}}} 1.0" in text


def test_a_binary_body_flagged_base64_is_decoded(tmp_path: Path) -> None:
    [answer] = run(proxy_app(tmp_path, "binary"), get("/api/things/1"))
    assert answer.status_code == 201 and answer.content == bytes(range(256))  # type: ignore[attr-defined]


def problem_of(answer: object, status: int, request_id: str) -> dict[str, object]:
    assert isinstance(answer, httpx.Response)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = answer.json()
    assert body["request_id"] == request_id and answer.headers["x-request-id"] == request_id
    return body


def test_a_handler_exception_is_a_502_problem_with_the_request_id(tmp_path: Path) -> None:
    [answer] = run(
        proxy_app(tmp_path, "fails"), get("/api/things/1", headers={"x-request-id": "req-fail"})
    )
    assert "failed on purpose" in str(problem_of(answer, 502, "req-fail")["detail"])


def test_a_malformed_result_is_a_502_problem(tmp_path: Path) -> None:
    [answer] = run(
        proxy_app(tmp_path, "malformed"), get("/api/things/1", headers={"x-request-id": "req-bad"})
    )
    assert "malformed" in str(problem_of(answer, 502, "req-bad")["detail"])


def test_a_worker_that_dies_gives_a_502_and_is_replaced(tmp_path: Path) -> None:
    app = proxy_app(tmp_path, "dies")
    first, second, exposed = run(
        app,
        get("/api/things/1", headers={"x-request-id": "req-died"}),
        get("/api/things/2"),
        metrics(),
    )
    problem_of(first, 502, "req-died")
    assert second.status_code == 502  # type: ignore[attr-defined]
    text = exposed.text  # type: ignore[attr-defined]
    assert (
        f'proxy_function_failures_total{{function="{HANDLERS}:dies",reason="worker-died"}} 2.0'
        in text
    )
    assert f'proxy_function_workers{{function="{HANDLERS}:dies"}} 0.0' in text


def test_a_function_past_the_route_timeout_is_a_504_and_its_worker_is_killed(
    tmp_path: Path,
) -> None:
    app = proxy_app(tmp_path, "sleeps", timeout=1.0)
    slow, exposed = run(
        app, get("/api/things/1?seconds=30", headers={"x-request-id": "req-slow"}), metrics()
    )
    problem_of(slow, 504, "req-slow")
    assert 'reason="timeout"} 1.0' in exposed.text  # type: ignore[attr-defined]


def test_end_to_end_a_real_proxy_process_serves_a_function_route(
    proxy_factory: Callable[..., RunningProxy], client: httpx.Client
) -> None:
    proxy = proxy_factory(table("echo"), {}, PROXY_FUNCTION_WORKERS="2")
    answer = client.put(
        f"{proxy.url}/api/things/9", json={"n": 2}, headers={"x-request-id": "req-e2e"}
    )
    assert answer.status_code == 200
    event = answer.json()["event"]
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert json.loads(event["body"]) == {"n": 2}
    assert answer.headers["x-request-id"] == "req-e2e"
    exposed = client.get(f"{proxy.url}/metrics").text
    assert "proxy_function_cold_start_seconds_count" in exposed
    assert (
        'proxy_requests_total{method="PUT",route="things.any",status="200",target="things"} 1.0'
        in exposed
    )


def test_a_function_in_shadow_is_asked_each_read_and_compared_with_the_monolith(
    tmp_path: Path,
) -> None:
    """The monolith answers; the function is asked the same read off the hot path, and the
    comparison counts (equal answers match, different ones differ)."""
    results = {}
    for handler in ("like_the_monolith", "echo"):
        folder = tmp_path / handler
        folder.mkdir()
        app = proxy_app(folder, handler, mode="shadow")

        async def compared(client: httpx.AsyncClient, app: ProxyApp = app) -> None:
            for _ in range(200):  # the comparisons run off the hot path: wait for them
                found = app.shadow.stats.get("things.any")
                if found is not None and found.compared + found.errors >= 4:
                    return
                await asyncio.sleep(0.05)

        *answers, _ = run(app, *(get(f"/api/things/{n}") for n in range(4)), compared)
        assert all(
            isinstance(a, httpx.Response) and a.json() == {"from": "monolith"} for a in answers
        )
        results[handler] = app.shadow.stats["things.any"]
    same, other = results["like_the_monolith"], results["echo"]
    assert same.compared == same.matched == 4 and not same.errors
    assert other.compared == other.mismatched == 4 and not other.errors
