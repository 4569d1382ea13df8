"""`strangler up`: one command from an empty folder to a seeded, serving system, and back."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from strangler.processes import free_port


def _read_until_ready(process: subprocess.Popen[str]) -> list[str]:
    """The command's output up to its `ready` line (EOF if it died first)."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("ready"):
            break
    return seen


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_up_seeds_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "strangler", "up", "--port", str(port), "--scale", "0.02"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"},
    )
    try:
        before = _read_until_ready(process)
        assert before[-1].startswith(f"ready http://127.0.0.1:{port}"), before
        page = httpx.get(f"http://127.0.0.1:{port}/api/threads?limit=5").json()
        assert len(page["items"]) == 5
        assert (tmp_path / ".strangler" / "monolith.sqlite3").exists()
        assert (tmp_path / ".strangler" / "token-secret").stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGTERM)
        after = process.communicate(timeout=30)[0]
    assert process.returncode == 0, after
    assert "stopped" in after
    assert _port_is_free(port)
