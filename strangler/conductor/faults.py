"""Named points where a fault test may stop a migration command, to kill whatever it likes.

`STRANGLER_PAUSE_AT=passed:backfill,step:flip routes` makes the command that reaches one of
those points write `paused` into the system's folder (the point and its pid) and wait there
until the file is removed, or the process is killed. Every gate boundary (`started:<gate>`,
`passed:<gate>`) and every step inside a cutover or rollback (`step:<step>`) is such a point,
so a test can crash the system at each of them, on purpose and on time. Unset, a checkpoint
costs one environment lookup. This module must never change anything but that file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

VARIABLE = "STRANGLER_PAUSE_AT"
MARKER = "paused"


def checkpoint(folder: Path, point: str) -> None:
    """Pause here if a fault test asked for `point`."""
    wanted = os.environ.get(VARIABLE)
    if not wanted or point not in {item.strip() for item in wanted.split(",")}:
        return
    marker = folder / MARKER
    marker.write_text(f"{point}\n{os.getpid()}\n")
    while marker.exists():
        time.sleep(0.05)
