"""Specification of what a client can do to its connection: nothing wedges the proxy.

A connection that sends nothing, or trickles its head, is ended after the header timeout (408
where a request began); a kept-alive connection idle past the idle timeout is closed; past the
cap on connections a new one is told 503 at once; bytes that are not HTTP get a 400. Through a
real proxy process, over raw sockets, with timeouts of a second or so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.conftest import RunningProxy, Upstream, start_proxy
from tests.proxy.raw_http import connect, get, has_data, is_closed_by_peer, read_answer

HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0
MAX_CONNECTIONS = 4
# Every wait for the proxy to act is bounded by this, far beyond the timeouts above and far
# below the defaults (60 s, 75 s): a proxy that ignored its settings fails, not hangs.
PATIENCE = 8.0


@pytest.fixture(scope="module")
def proxy(module_dir: Path, monolith: Upstream) -> Iterator[RunningProxy]:
    running = start_proxy(
        module_dir, "", {"monolith": monolith.url},
        PROXY_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        PROXY_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
    )  # fmt: skip
    yield running
    running.process.stop()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    proxy: RunningProxy,
) -> None:
    with connect(proxy.port, timeout=PATIENCE) as connection:
        assert is_closed_by_peer(connection)


@pytest.mark.parametrize("kept_alive", [False, True], ids=["new", "kept-alive"])
def test_a_head_trickled_a_byte_at_a_time_gets_a_408_at_the_header_timeout(
    proxy: RunningProxy, kept_alive: bool
) -> None:
    head = get("/api/threads", **{"X-Padding": "p" * 200})
    sent = 0
    with connect(proxy.port, timeout=PATIENCE) as connection:
        if kept_alive:  # the head's time runs from its first byte, not from the last answer
            connection.sendall(get())
            assert read_answer(connection).status == 200
            time.sleep(IDLE_TIMEOUT / 2)
        # One byte every 0.1 s would take 20 s for the head: each byte must not restart the
        # clock, or the proxy would wait for ever.
        while sent < len(head) and not has_data(connection):
            connection.send(head[sent : sent + 1])
            sent += 1
            time.sleep(0.1)
        answer = read_answer(connection)
        assert is_closed_by_peer(connection)
    assert sent < len(head), "the proxy waited for the whole trickled head"
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    assert answer.problem()["type"] == "urn:strangler:problem:request-timeout"


def test_a_kept_alive_connection_idle_past_the_idle_timeout_is_closed(
    proxy: RunningProxy,
) -> None:
    with connect(proxy.port, timeout=PATIENCE) as connection:
        connection.sendall(get())
        assert read_answer(connection).status == 200
        connection.sendall(get())  # still open within the idle timeout
        assert read_answer(connection).status == 200
        assert is_closed_by_peer(connection)


def test_bytes_that_are_not_http_get_a_400_problem(proxy: RunningProxy) -> None:
    with connect(proxy.port) as connection:
        connection.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not http\r\n\r\n")
        answer = read_answer(connection)
    assert answer.status == 400
    assert answer.problem()["type"] == "urn:strangler:problem:bad-request"


def test_past_the_connection_cap_a_new_connection_gets_503_with_retry_after(
    tmp_path: Path, monolith: Upstream
) -> None:
    proxy = start_proxy(
        tmp_path, "", {"monolith": monolith.url}, PROXY_MAX_CONNECTIONS=str(MAX_CONNECTIONS)
    )
    held = [connect(proxy.port) for _ in range(MAX_CONNECTIONS)]
    try:
        for connection in held:  # each one is served, and stays open
            connection.sendall(get())
            assert read_answer(connection).status == 200
        with connect(proxy.port) as refused:
            refused.sendall(get())
            answer = read_answer(refused)
            assert is_closed_by_peer(refused)
        assert answer.status == 503
        assert answer.headers["retry-after"].isdigit()
        assert answer.headers["connection"] == "close"
        assert "at most" in answer.problem()["detail"]

        held.pop().close()  # a place frees up when a connection leaves
        time.sleep(0.2)
        with connect(proxy.port) as admitted:
            admitted.sendall(get())
            assert read_answer(admitted).status == 200
    finally:
        for connection in held:
            connection.close()
        proxy.process.stop()
