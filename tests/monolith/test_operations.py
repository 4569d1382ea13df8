"""Operating the monolith: health, metrics and structured logs with the request id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from strangler.runtime.launch import monolith_command, monolith_environment
from strangler.runtime.processes import free_port, start
from strangler.workspace import find_workspace
from tests.support.servers import TEST_TOKEN_SECRET


def test_healthz_is_ok_when_the_database_answers(monolith_url: str) -> None:
    response = httpx.get(f"{monolith_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    process = start(
        "monolith",
        monolith_command(find_workspace(), port, workers=1),
        monolith_environment(find_workspace(), unreachable, TEST_TOKEN_SECRET, tmp_path),
        log_path=tmp_path / "monolith.log",
    )
    try:
        response = _first_answer(f"http://127.0.0.1:{port}/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
    finally:
        process.stop()


def _first_answer(url: str, attempts: int = 200) -> httpx.Response:
    for _ in range(attempts):
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            import time

            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_metrics_count_requests_by_route_template(monolith_url: str) -> None:
    for thread_id in (999_001, 999_002):
        httpx.get(f"{monolith_url}/api/threads/{thread_id}")
    text = httpx.get(f"{monolith_url}/metrics").text
    assert 'route="/api/threads/<id:thread_id>"' in text
    assert 'status="404"' in text
    assert "http_request_duration_seconds_bucket" in text


def test_every_log_line_of_a_request_carries_its_request_id(tmp_path: Path) -> None:
    from tests.support.servers import running_monolith

    with running_monolith(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path, workers=1) as base:
        response = httpx.get(f"{base}/api/threads/12345", headers={"X-Request-ID": "trace-me-42"})
        assert response.headers["X-Request-ID"] == "trace-me-42"
    lines = (tmp_path / "logs" / "monolith.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    mine = [event for event in events if event.get("request_id") == "trace-me-42"]
    assert mine and mine[0]["path"] == "/api/threads/12345" and mine[0]["status"] == 404
