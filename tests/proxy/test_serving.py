"""Specification of the proxy process itself: its ports, its start and its stop.

Real `python -m strangler_proxy` processes on loopback ports, as `strangler up` runs them.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.runtime.processes import ProcessFailed, free_port, start
from tests.proxy.conftest import ADMIN_TOKEN, Upstream


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


def run_proxy(tmp_path: Path, port: int, monolith: Upstream, **env: str) -> int | None:
    """Start the proxy, wait until it is healthy, stop it (SIGTERM); its exit status."""
    argv = [sys.executable, "-m", "strangler_proxy", "--port", str(port)]
    environment = {
        "PROXY_MONOLITH_URL": monolith.url,
        "PROXY_ADMIN_TOKEN": ADMIN_TOKEN,
        "PROXY_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
        "PROXY_ANALYSIS_INTERVAL_SECONDS": "0",
        **env,
    }
    log = tmp_path / "proxy.log"
    process = start("proxy", argv, environment, f"http://127.0.0.1:{port}/healthz", log)
    try:
        process.wait_healthy(timeout=15)
    finally:
        status = process.stop()
    return status


@pytest.mark.parametrize("which", ["public", "admin"])
def test_a_taken_port_fails_the_proxy_before_it_reports_ready(
    tmp_path: Path, monolith: Upstream, taken_port: int, which: str
) -> None:
    public, admin = (taken_port, free_port()) if which == "public" else (free_port(), taken_port)
    with pytest.raises(ProcessFailed, match="exited with 3") as failure:
        run_proxy(tmp_path, public, monolith, PROXY_ADMIN_PORT=str(admin))
    assert "proxy cannot listen" in str(failure.value)
    assert "proxy ready" not in (tmp_path / "proxy.log").read_text()


def test_sigterm_stops_both_ports_cleanly(tmp_path: Path, monolith: Upstream) -> None:
    public, admin = free_port(), free_port()
    assert run_proxy(tmp_path, public, monolith, PROXY_ADMIN_PORT=str(admin)) == 0
    for port in (public, admin):
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
