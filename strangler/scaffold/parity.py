"""What a scaffolded service's parity test runs: the context's reads, replayed on both sides.

For every route of the context that answers GET, concrete paths are made from the values the
workspace's `[probes]` hints find (on the monolith), and each is asked of the monolith and of
the service directly (not through the proxy). Answers must agree: the same status, and JSON
equal but for the fields the workspace ignores (`shadow_ignore`, the route's own), or else the
same bytes; a route the context's `shadow_skips` names is not judged. This module must never
change anything it asks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from strangler.conductor.probes import Prober
from strangler.runtime.run_record import read_run, supervisor_alive
from strangler.workspace import Workspace
from strangler_proxy.comparison import unexplained

PER_ROUTE = 3


def running_urls(root: Path, context: str) -> tuple[str, str] | None:
    """(monolith URL, service URL) of the system `root` runs, if both run now."""
    record = read_run(root / ".strangler" / "run.json")
    if record is None or not supervisor_alive(record):
        return None
    processes = record.processes
    if "monolith" not in processes or context not in processes:
        return None
    return record.url_of("monolith"), record.url_of(context)


def _body(answer: httpx.Response) -> Any:
    if "json" not in answer.headers.get("content-type", ""):
        raise ValueError("not JSON")
    return answer.json()


def replay(workspace: Workspace, context: str, monolith_url: str, service_url: str) -> list[str]:
    """Every difference between the two sides' answers, one line each."""
    spec = workspace.contexts[context]
    skipped = {skip.route for skip in spec.shadow_skips}
    everywhere = [rule.field for rule in workspace.spec.shadow_ignore]
    prober = Prober(monolith_url, "", workspace.spec.probes)
    differences = []
    try:
        with httpx.Client(timeout=10.0) as client:
            for route in workspace.spec.routes_claimed_by(context):
                if "GET" not in route.methods or route.name in skipped:
                    continue
                ignored = [*everywhere, *(rule.field for rule in route.shadow_ignore)]
                for _ in range(PER_ROUTE):
                    path = prober.path_for({"path": route.path, "name": route.name})
                    if path is None:
                        break
                    found = _compare(client, monolith_url, service_url, path, ignored)
                    if found:
                        differences.append(f"{route.name} GET {path}: {found}")
    finally:
        prober.close()
    return differences


def _compare(
    client: httpx.Client, monolith_url: str, service_url: str, path: str, ignored: list[str]
) -> str | None:
    monolith, service = client.get(monolith_url + path), client.get(service_url + path)
    if monolith.status_code != service.status_code:
        return f"status {monolith.status_code} on the monolith, {service.status_code} here"
    try:
        fields = unexplained(_body(monolith), _body(service), ignored)
    except (ValueError, json.JSONDecodeError):
        return None if monolith.content == service.content else "the bodies differ"
    return f"fields {fields[:6]} differ" if fields else None
