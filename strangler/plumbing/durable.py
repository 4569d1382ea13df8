"""Replacing a small file so that a crash at any moment leaves the old text or the new one.

The text goes to a temporary file beside it (named by the writing process, so two writers never
share one), is fsynced, renamed over the file, and the folder is fsynced so the rename itself
survives a power cut. This module must never lock: serialising writers is the caller's job.
"""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(path: Path, text: str) -> None:
    """Make `path` hold `text`, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
