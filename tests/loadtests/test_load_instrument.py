"""Specification of the benchmarks' readings: preemptions and the machine's idle share."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import namedtuple

from strangler.compare.load import _idle_share, preemptions, process_tree

Times = namedtuple("Times", "user system idle")


def test_the_idle_share_is_the_idle_part_of_the_cpu_time_spent_meanwhile() -> None:
    assert _idle_share(Times(10, 5, 100), Times(16, 8, 101)) == 0.1
    assert _idle_share(Times(10, 5, 100), Times(10, 5, 100)) is None  # no time passed


def test_preemptions_count_the_processes_of_the_tree() -> None:
    # More busy processes than cores, all children of one shell: the scheduler must take
    # turns, and each turn taken from a busy process is an involuntary switch.
    spinners = (os.cpu_count() or 2) + 2
    program = "import time\nt = time.monotonic() + 1.5\nwhile time.monotonic() < t: pass"
    spin = f"{shlex.quote(sys.executable)} -c {shlex.quote(program)}"
    shell = subprocess.Popen(["sh", "-c", " & ".join([spin] * spinners) + " & wait"])
    try:
        time.sleep(1.0)
        assert len(process_tree(shell.pid)) > spinners  # the shell and its busy children
        assert preemptions(shell.pid) > 0
    finally:
        shell.wait(timeout=10)


def test_a_process_that_is_gone_counts_nothing() -> None:
    assert preemptions(2**22 + 12345) == 0
