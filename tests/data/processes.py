"""The data path's real processes for tests: the CLI's backfill and the sync, killable."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from strangler.datapath import apply, state
from strangler.datapath.link import Link
from strangler.runtime.launch import sync_command, sync_environment, workspace_environment
from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.workspace import Workspace, find_workspace


def cli(link_urls: tuple[str, str], context: str, folder: Path, *arguments: str) -> ManagedProcess:
    """`strangler data <arguments>` as a process, on the given monolith and service databases."""
    monolith, service = link_urls
    env = {"MONOLITH_DATABASE_URL": monolith, f"{context.upper()}_DATABASE_URL": service}
    argv = [sys.executable, "-m", "strangler", "data", *arguments]
    return start("strangler-data", argv, env, log_path=folder / "logs" / "data-cli.log", cwd=folder)


def backfill(
    link_urls: tuple[str, str],
    context: str,
    folder: Path,
    chunk_rows: int,
    workspace: Workspace | None = None,
) -> ManagedProcess:
    """`python -m strangler.datapath.backfill` as a process (lighter to start than the CLI),
    on the workspace's databases as its variables name them."""
    workspace = workspace or find_workspace()
    monolith, service = link_urls
    env = {
        **workspace_environment(workspace),
        workspace.url_variable("monolith"): monolith,
        workspace.url_variable(context): service,
    }
    argv = [
        sys.executable,
        "-m",
        "strangler.datapath.backfill",
        context,
        "--chunk-rows",
        str(chunk_rows),
    ]
    return start("backfill", argv, env, log_path=folder / "logs" / "backfill.log", cwd=folder)


def sync_spec(
    link_urls: tuple[str, str], context: str, workspace: Workspace | None = None
) -> tuple[str, list[str], dict[str, str], int]:
    """(name, argv, env, port) of the sync process of `context`."""
    port = free_port()
    env = {
        **sync_environment(workspace or find_workspace(), *link_urls, port=port),
        "SYNC_POLL_SECONDS": "0.02",
    }
    return f"{context}-sync", sync_command(context), env, port


def sync(
    link_urls: tuple[str, str], context: str, folder: Path, workspace: Workspace | None = None
) -> tuple[ManagedProcess, int]:
    """The sync process of `context`, serving /healthz and /metrics; (process, port)."""
    name, argv, env, port = sync_spec(link_urls, context, workspace)
    process = start(
        name,
        argv,
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=folder / "logs" / f"{context}-sync.log",
        cwd=folder,
    )
    return process, port


def finished(process: ManagedProcess, timeout: float = 120) -> int:
    """Wait for a process to exit by itself; its exit code (with its log if it failed)."""
    code = process.popen.wait(timeout=timeout)
    assert code == 0, f"{process.name} exited {code}:\n{process.log_tail()}"
    return code


def caught_up(link: Link, timeout: float = 60) -> None:
    """Wait until every live feed of the context has applied everything (lag zero)."""
    deadline = time.monotonic() + timeout
    owner = state.read(link.monolith, link.context.name).owner
    while True:
        lags = apply.lags(link, link.context.directions(owner))
        if lags and all(lag.entries == 0 for lag in lags.values()):
            return
        assert time.monotonic() < deadline, f"the sync never caught up: {lags}"
        time.sleep(0.05)


def urls(link: Link) -> tuple[str, str]:
    return (
        link.monolith.url.render_as_string(hide_password=False),
        link.service.url.render_as_string(hide_password=False),
    )
