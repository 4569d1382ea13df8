"""Where Prometheus finds a system's processes: fixed ports, or a file-based discovery file.

Every process of a system serves Prometheus `/metrics` on its own loopback port (the proxy on
the public one). Ports are free ones by default, so two ways let a Prometheus find them:
`pinned_ports` gives every process a system could ever run a fixed port (the public port + 1,
+ 2, ... in a stable order, so a static scrape config stays right across restarts and stages);
`write_targets` keeps a `file_sd_configs` file (JSON) naming every running process, which
Prometheus re-reads by itself. This module must never start a process nor open a port.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from strangler.runtime.plan import CONSOLE, MONOLITH, PROXY, sync_name
from strangler.runtime.run_record import ADMIN, RunRecord
from strangler.runtime.supervisor import Supervisor
from strangler.workspace import Workspace

JOB = "strangler"


def process_names(workspace: Workspace) -> list[str]:
    """Every process any stage of `workspace` may run, in a stable order."""
    names = [ADMIN, CONSOLE, MONOLITH, *workspace.context_names]
    for context in workspace.context_names:
        names += [f"{context}-relay", f"{context}-consumer", sync_name(context)]
    return names


def pinned_ports(
    workspace: Workspace, public_port: int, taken: Mapping[str, int] | None = None
) -> dict[str, int]:
    """A fixed port for every process: the public port + 1, + 2... (ports already chosen, as a
    dead supervisor's adopted processes have them, are kept)."""
    taken = dict(taken or {})
    ports = {name: port for name, port in taken.items() if name != PROXY}
    next_port = public_port + 1
    for name in process_names(workspace):
        if name in ports:
            continue
        while next_port in ports.values() or next_port == public_port:
            next_port += 1
        ports[name] = next_port
        next_port += 1
    return ports


def targets(record: RunRecord, system: str = "") -> list[dict[str, Any]]:
    """The discovery document: one target group per running process, labelled by its name."""
    return [
        {
            "targets": [f"127.0.0.1:{process.port}"],
            "labels": {"job": JOB, "process": name, **({"system": system} if system else {})},
        }
        for name, process in sorted(record.processes.items())
    ]


def write_targets(path: Path, record: RunRecord, system: str = "") -> bool:
    """Write the discovery file if what it says changed (atomically); whether it did."""
    text = json.dumps(targets(record, system), indent=2) + "\n"
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)
    return True


def keep_targets(supervisor: Supervisor, path: Path | None) -> Callable[[], bool]:
    """The `should_stop` of `Supervisor.run` for `strangler up`: it never asks to stop, and on
    each tick keeps the discovery file at `path` (if any) naming what runs."""

    def never_stop() -> bool:
        if path is not None:
            write_targets(path, supervisor.record)
        return False

    return never_stop
