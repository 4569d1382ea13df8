"""`strangler up` and `down`: from an empty folder to a seeded, serving system, and back to
nothing: no process left, no port bound."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import psutil

from strangler.runtime.processes import free_port
from tests.support.command_line import strangler, strangler_up


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def gone(pids: list[int]) -> bool:
    def is_gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(is_gone(pid) for pid in pids)


def test_up_seeds_serves_shows_its_status_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with strangler_up(tmp_path, port, "--scale", "0.02") as up:
        page = httpx.get(f"{up.url}/api/threads?limit=5").json()
        assert len(page["items"]) == 5
        status = up.status()
        assert status["stage"] == 0 and status["is_running"]
        assert {route["mode"] for route in status["routes"]} == {"monolith"}
        healthy = {process["name"]: process["is_healthy"] for process in status["processes"]}
        assert healthy == {"monolith": True, "proxy": True, "console": True}
        assert [context["served_by"] for context in status["contexts"]] == ["monolith"] * 4
        assert (tmp_path / ".strangler" / "monolith.sqlite3").exists()
        assert (tmp_path / ".strangler" / "token-secret").stat().st_mode & 0o077 == 0
        ports = list(up.record().ports.values())
        pids = up.every_pid()
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=60) == 0
    assert "stopped" in "".join(up.output)
    assert gone(pids)
    assert all(port_is_free(port) for port in ports)


def test_down_from_another_terminal_stops_every_process_and_frees_every_port(
    tmp_path: Path,
) -> None:
    port = free_port()
    with strangler_up(tmp_path, port, "--scale", "0.02") as up:
        second = strangler(tmp_path, "up", "--port", str(free_port()), timeout=60)
        assert second.returncode == 1
        assert f"already running at {up.url}" in second.stdout
        record = up.record()
        assert set(record.processes) == {"monolith", "proxy", "console"}
        pids = up.every_pid()
        assert len(pids) >= 4  # the proxy, gunicorn and its two workers
        stopped = strangler(tmp_path, "down")
        assert stopped.returncode == 0, stopped.stderr
        assert up.process.wait(timeout=60) == 0
    assert gone(pids)
    assert all(port_is_free(port) for port in record.ports.values())
    assert "nothing is running" in strangler(tmp_path, "down").stdout


def test_a_killed_process_is_restarted_and_down_cleans_up_after_a_killed_supervisor(
    tmp_path: Path,
) -> None:
    with strangler_up(tmp_path, free_port(), "--scale", "0.02") as up:
        killed = up.record().processes["monolith"]
        psutil.Process(killed.pid).send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            current = up.record().processes.get("monolith")
            if current and current.pid != killed.pid and current.state == "healthy":
                break
            time.sleep(0.2)
        assert current is not None and current.restarts == 1 and current.state == "healthy"
        assert httpx.get(f"{up.url}/api/threads?limit=1").status_code == 200
        pids, ports = up.every_pid(), list(up.record().ports.values())
        up.process.kill()  # the supervisor dies; its processes, each in its own group, do not
        up.process.wait(timeout=30)
        assert not gone(pids)
        cleaned = strangler(tmp_path, "down")
    assert "stopped what the supervisor left running: monolith, proxy, console" in cleaned.stdout
    assert gone(pids)
    assert all(port_is_free(port) for port in ports)
