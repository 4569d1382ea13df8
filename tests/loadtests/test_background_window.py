"""The background window starts once the system has booted: a process still importing its
application is not read as polling."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from strangler.compare.comparison import _booted

BOOTS_THEN_WAITS = (
    "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    "time.sleep(30)"
)


@dataclass
class Started:
    """What `_booted` asks of a running system: its processes by name."""

    processes: dict[str, subprocess.Popen[bytes]]

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}


@contextmanager
def started(**boot_seconds: float) -> Iterator[Started]:
    processes = {
        name: subprocess.Popen([sys.executable, "-c", BOOTS_THEN_WAITS.format(seconds=seconds)])
        for name, seconds in boot_seconds.items()
    }
    try:
        yield Started(processes)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


def test_the_window_waits_for_the_slowest_process_to_finish_booting() -> None:
    with started(monolith=1.5, proxy=0.0) as system:
        began = time.monotonic()
        assert _booted(system)  # type: ignore[arg-type]
        assert time.monotonic() - began >= 1.2  # not while the monolith still burned CPU


def test_a_system_that_never_settles_lets_the_window_go_ahead_after_the_bound() -> None:
    with started(monolith=60.0) as system:
        began = time.monotonic()
        assert not _booted(system, most_seconds=1.0)  # type: ignore[arg-type]
        assert time.monotonic() - began < 3
