"""Specification of the small parts the proxy's hot path is built from, each in isolation.

The response writer (one write per small response), the connection limit without `await` when
free, the access log's hand-made JSON lines and the request metrics' exposition. Every one of
them replaced a general tool for speed (docs/proxy.md, "Performance"), so each is held here to
what the general tool gave.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from strangler.plumbing.metrics import LATENCY_BUCKETS
from strangler_proxy.access_log import AccessLog
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.server import CoalescingTransport, ProxyHttpProtocol
from strangler_proxy.upstream_pool import Limit


class RecordingTransport(asyncio.Transport):
    """Stands in for the socket: records each write call as one segment."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = self.ended = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.writes.append(b"".join(list_of_data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write_eof(self) -> None:
        self.ended = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


def run_on_a_loop(scenario: Any) -> None:
    asyncio.run(scenario())


def test_a_response_head_and_its_body_leave_in_one_write() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.hold_next()
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]

    run_on_a_loop(scenario)


def test_a_held_head_leaves_at_the_end_of_the_loop_pass_when_no_body_follows() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.hold_next()
        transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        assert raw.writes == []
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
        transport.write(b"2\r\nok\r\n")
        assert raw.writes[-1] == b"2\r\nok\r\n"

    run_on_a_loop(scenario)


def test_only_the_write_after_hold_next_is_held() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"not a held head")
        assert raw.writes == [b"not a held head"]

    run_on_a_loop(scenario)


def test_closing_or_ending_sends_a_held_head_first_and_aborting_drops_it() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        closed, ended, aborted = RecordingTransport(), RecordingTransport(), RecordingTransport()
        for raw, end in ((closed, "close"), (ended, "write_eof"), (aborted, "abort")):
            transport = CoalescingTransport(raw, loop)
            transport.hold_next()
            transport.write(b"head")
            getattr(transport, end)()
        await asyncio.sleep(0)
        assert closed.writes == [b"head"] and closed.closed
        assert ended.writes == [b"head"] and ended.ended
        assert aborted.writes == [] and aborted.aborted

    run_on_a_loop(scenario)


def test_the_uvicorn_hooks_the_proxy_protocol_relies_on_still_exist() -> None:
    # uvicorn starts each request's task in `_start_asgi_task` and writes through
    # `self.transport`; if either changes, heads are silently no longer coalesced.
    base = ProxyHttpProtocol.__mro__[1]
    assert "_start_asgi_task" in vars(base)
    assert "connection_made" in vars(base)


def test_a_free_limit_is_taken_without_waiting_and_a_full_one_serves_waiters_in_order() -> None:
    async def scenario() -> None:
        limit = Limit(1)
        assert limit.try_take()
        assert not limit.try_take()
        order: list[str] = []

        async def waiter(name: str) -> None:
            await limit.take()
            order.append(name)

        first = asyncio.create_task(waiter("first"))
        second = asyncio.create_task(waiter("second"))
        await asyncio.sleep(0)
        limit.give()
        await first
        limit.give()
        await second
        assert order == ["first", "second"]

    run_on_a_loop(scenario)


def test_a_cancelled_waiter_passes_its_place_on() -> None:
    async def scenario() -> None:
        limit = Limit(1)
        await limit.take()
        cancelled = asyncio.create_task(limit.take())
        patient = asyncio.create_task(limit.take())
        await asyncio.sleep(0)
        limit.give()  # handed to `cancelled`, which is cancelled before it resumes
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(patient, timeout=5)

    run_on_a_loop(scenario)


def test_access_log_lines_are_the_json_of_their_fields() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record("id-1", "GET", '/api/caf\u00e9/"x"', "forum.get", "monolith", 200, None, 0.0012345)
    log.record(
        "id-2", "POST", "/api/users", "users.create", "users", 502, "refused", 1.5,
        client="127.0.0.2",
    )  # fmt: skip
    log.flush()
    lines = stream.getvalue().splitlines()
    parsed = [json.loads(line) for line in lines]
    for line, fields in zip(lines, parsed, strict=True):
        assert line == json.dumps(fields)  # the shape and spacing `json.dumps` gives
    assert parsed[0]["path"] == '/api/caf\u00e9/"x"' and parsed[0]["fallback"] is None
    assert parsed[0]["duration_ms"] == 1.234 and parsed[1]["duration_ms"] == 1500.0
    assert parsed[1]["status"] == 502 and parsed[1]["fallback"] == "refused"
    assert all(record["timestamp"].endswith("Z") for record in parsed)
    assert [record["request_id"] for record in parsed] == ["id-1", "id-2"]
    assert [record["client"] for record in parsed] == ["unknown", "127.0.0.2"]


def test_request_metrics_are_exposed_as_prometheus_client_would() -> None:
    reference = CollectorRegistry()
    counter = Counter(
        "proxy_requests_total",
        "Requests answered by the proxy",
        ["route", "target", "method", "status"],
        registry=reference,
    )
    histogram = Histogram(
        "proxy_request_duration_seconds",
        "Time from request to the last byte of the response",
        ["route", "target"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    metrics = ProxyMetrics()
    for seconds in (0.0, 0.0005, 0.001, 0.0011, 0.3, 5.0, 20.0):
        counter.labels("r", "monolith", "GET", "200").inc()
        histogram.labels("r", "monolith").observe(seconds)
        metrics.observe("r", "monolith", "GET", 200, seconds)
    metrics.observe("r", "users", "POST", 502, 0.01)
    counter.labels("r", "users", "POST", "502").inc()
    histogram.labels("r", "users").observe(0.01)

    def samples(text: bytes) -> list[str]:
        return [
            line
            for line in text.decode().splitlines()
            if line.startswith("proxy_request") and "_created" not in line
        ]

    assert samples(metrics.exposition()[0]) == samples(generate_latest(reference))
