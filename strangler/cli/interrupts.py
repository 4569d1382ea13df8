"""Ctrl-C and SIGTERM for the commands that run processes: stop what was started, then exit.

`stop_on_signals` makes both raise `StopRequested` wherever the command is; while the command
then stops its processes, `ignore_signals` keeps a second Ctrl-C from leaving half of them
running. This module must never stop a process itself.
"""

from __future__ import annotations

import signal
from types import FrameType


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived: stop what was started, then exit cleanly."""


def stop_on_signals() -> None:
    """From now on SIGTERM and SIGINT raise StopRequested, wherever the command is."""

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        raise StopRequested

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def ignore_signals() -> None:
    """While stopping, a second Ctrl-C must not leave half the processes running."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
