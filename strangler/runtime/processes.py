"""Process supervision: start a server on a loopback port, wait until healthy, stop it cleanly.

Used by `strangler up` and by the test fixtures alike, so tests run the very processes users
run. Each child gets its own process group, so stopping it also stops its workers (gunicorn)
and nothing is left bound to a port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from strangler.runtime.launch import prepare_metrics_directory


class ProcessFailed(RuntimeError):
    """A supervised process exited or never became healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def answers(url: str, client: httpx.Client) -> bool:
    """Whether a process is healthy: `GET url` answers 200, or, for a `tcp://host:port` URL (an
    app with no health path), its port accepts a connection."""
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return True
        except OSError:
            return False
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


def holder_of(port: int, host: str = "127.0.0.1") -> str | None:
    """Who listens on `port` now ("pid 123: python -m ..."), or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return None
        except OSError:
            pass
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            if connection.pid is None:
                return "a process of another user"
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())[:120]
            except psutil.Error:
                command = "?"
            return f"pid {connection.pid}: {command}"
    return "another process"


@dataclass
class ManagedProcess:
    """One child process we started, with where its output goes and how to check it."""

    name: str
    argv: Sequence[str]
    health_url: str | None
    log_path: Path | None
    popen: subprocess.Popen[bytes]
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def is_running(self) -> bool:
        return self.popen.poll() is None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Poll the health URL until it answers 200; raise with the log tail if it cannot."""
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.is_running:
                    raise ProcessFailed(
                        f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                    )
                if answers(self.health_url, client):
                    return
                time.sleep(0.05)
        self.stop()
        raise ProcessFailed(f"{self.name} was not healthy within {timeout}s:\n{self.log_tail()}")

    def signal(self, signum: int) -> None:
        """Send a signal to the whole process group (the server and its workers)."""
        if self.is_running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the group, wait `grace` seconds, then SIGKILL; return the exit code."""
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=5)
        # Workers may outlive a killed master; the group must be empty before we return.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.popen.returncode


@dataclass
class AdoptedProcess:
    """A process another supervisor started (and died since): known by its pid and start time,
    stopped through its process group like one of ours."""

    name: str
    pid: int
    started: float
    log_path: Path | None

    @property
    def is_running(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.started) < 0.01
            return same and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @property
    def returncode(self) -> int | None:
        return None if self.is_running else -1  # not our child: its code is not ours to read

    def signal(self, signum: int) -> None:
        if self.is_running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the group, wait `grace` seconds, then SIGKILL it."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.is_running and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return self.returncode


def start(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    health_url: str | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `argv` in its own process group with `env` added to ours; output goes to `log_path`."""
    prepare_metrics_directory(env)
    log_file = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed by ManagedProcess.stop
    popen = subprocess.Popen(
        list(argv),
        env={**os.environ, **env},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_file if log_file else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
        start_new_session=True,
    )
    return ManagedProcess(name, argv, health_url, log_path, popen, log_file)
