"""What every relay and consumer process shares: stopping cleanly on SIGTERM or SIGINT.

A SIGKILL stops nothing cleanly, and does not need to: every step is safe to repeat.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so the loops finish their batch and exit."""
    stopping = threading.Event()

    def _stop(_: int, __: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stopping
