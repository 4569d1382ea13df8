"""One migration command at a time: the exclusive lock a command holds while it moves a system.

It is an advisory file lock, released by the kernel when its holder dies, so a killed command
never leaves a folder locked. This module must never change the migration.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Busy(RuntimeError):
    """Another command is changing the migration right now."""


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold the migration's lock, or raise Busy naming who holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Busy(f"another strangler command ({holder}) is changing the migration") from error
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
