"""Driving the real `strangler` command in a folder, as a user in a terminal would.

`strangler_up` runs `strangler up` in the background until its `ready` line (stopping it
afterwards, and failing the test if it does not stop cleanly); `strangler` runs any other
command to completion. The child gets a plain environment plus what the test adds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from strangler.runtime.run_record import RunRecord, read_run

# Cheap password hashing for every process: tests sign up many users.
FAST_PASSWORDS = {
    f"{prefix}_{name}": value
    for prefix in ("MONOLITH", "USERS")
    for name, value in (("PASSWORD_TIME_COST", "1"), ("PASSWORD_MEMORY_KIB", "1024"))
}


def environment(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "COLUMNS": "200",
        **FAST_PASSWORDS,
        **(extra or {}),
    }


def strangler(
    folder: Path, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `strangler ARGUMENTS` in `folder` to completion; its output is in the result."""
    return subprocess.run(
        [sys.executable, "-m", "strangler", *arguments],
        cwd=folder,
        env=environment(folder, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Up:
    """A `strangler up` running in the background."""

    process: subprocess.Popen[str]
    folder: Path
    url: str
    output: list[str]

    def record(self) -> RunRecord:
        found = read_run(self.folder / ".strangler" / "run.json")
        assert found is not None, "strangler up recorded nothing"
        return found

    def every_pid(self) -> list[int]:
        """The supervisor's children and all their workers, as they are now."""
        return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]

    def status(self) -> dict[str, Any]:
        result = strangler(self.folder, "status", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found


@contextmanager
def strangler_up(
    folder: Path, port: int, *arguments: str, env: Mapping[str, str] | None = None
) -> Iterator[Up]:
    """`strangler up --port PORT ARGUMENTS` in `folder`, ready; stopped (SIGTERM) afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "strangler", "up", "--port", str(port), *arguments],
        cwd=folder,
        env=environment(folder, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("ready"):
            break
    try:
        assert seen and seen[-1].startswith("ready"), "".join(seen)
        yield Up(process, folder, f"http://127.0.0.1:{port}", seen)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=120)[0]
        seen.append(rest)
