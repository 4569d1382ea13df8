"""The sampler against real processes: CPU over a window, a process that exits, memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from strangler.compare.sampler import Sampler

BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
IDLE = "import time; time.sleep({seconds})"


def _python(code: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code.format(seconds=seconds)])


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def test_cpu_over_a_window_counts_a_busy_process_and_not_an_idle_one() -> None:
    busy, idle, generator = _python(BURN, 3), _python(IDLE, 3), _python(IDLE, 3)
    watched = psutil.Process(busy.pid)
    sampler = Sampler(
        system=lambda: {busy.pid: "monolith", idle.pid: "proxy"},
        generator=lambda: [generator.pid],
        interval=0.1,
    )
    try:
        sampler.start()
        time.sleep(0.5)
        started, before = time.time(), _cpu(watched)
        time.sleep(1.5)
        ended, after = time.time(), _cpu(watched)
        time.sleep(0.3)
        sampler.stop()
    finally:
        for process in (busy, idle, generator):
            process.kill()
            process.wait()
    used = sampler.resources(started, ended)
    # What the kernel says the busy process spent in the window, whatever share of a core a
    # shared machine gave it; the sampler's samples are 0.1 s apart at each end of the window.
    spent = after - before
    assert spent > 0
    assert 0 < used.cpu_seconds_by_role["monolith"] == pytest.approx(spent, abs=0.25)
    assert used.cpu_seconds_by_role["proxy"] < 0.1
    assert used.cpu_seconds == pytest.approx(sum(used.cpu_seconds_by_role.values()))
    assert used.generator_cpu_seconds < 0.1 and used.generator_busiest_core < 0.1
    assert used.peak_memory_mib > 1


def test_a_process_that_exits_keeps_what_it_spent() -> None:
    short = _python(BURN, 0.6)
    sampler = Sampler(system=lambda: {short.pid: "events"}, generator=list, interval=0.1)
    began = time.time()
    sampler.start()
    _, _, usage = os.wait4(short.pid, 0)  # reaped here: the kernel's account of its CPU
    short.returncode = 0
    time.sleep(0.4)
    sampler.stop()
    spent = sampler.resources(began, time.time()).cpu_seconds_by_role["events"]
    later = sampler.resources(time.time() - 0.2, time.time())
    # All it spent, but for what it burnt after the last sample (one interval at most).
    assert usage.ru_utime + usage.ru_stime - 0.15 <= spent <= usage.ru_utime + usage.ru_stime + 0.05
    assert later.cpu_seconds_by_role.get("events", 0.0) == pytest.approx(0.0, abs=0.02)
