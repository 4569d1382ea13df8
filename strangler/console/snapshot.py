"""What the console shows, gathered into one JSON document from where each fact lives.

`Watcher.collect` builds the document the page renders: `strangler status`'s inspection (the
state, the routes the proxy serves, each process's health, each context's data path), the
proxy's admin API (its audit log, shadow samples, breakers, canary decisions, freezes), two
scrapes of the proxy's /metrics (traffic per route and side), each process's CPU and memory,
the gates of the move under way or next, and recent traces from the trace spool. A part that
cannot be read becomes a line of `problems`; the rest is still shown. This module must never
change anything it looks at.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import httpx
import psutil

from strangler.conductor.conductor import Conductor
from strangler.conductor.inspection import SystemView, inspect
from strangler.conductor.moves import gates_of
from strangler.conductor.settings import GateSettings
from strangler.console import traces, traffic
from strangler.console.actions import Runner
from strangler.plumbing.trace_spool import SpanRecord, recent_spans
from strangler.runtime.home import Home
from strangler.runtime.run_record import RunRecord, read_run
from strangler.workspace.stages import Migration
from strangler_proxy.client import ProxyAdmin, ProxyAdminError

CLIENTS = "clients"
PROXY = "proxy"
AUDIT_ENTRIES = 40
SPAN_WINDOW_SECONDS = 120.0


class _Detached:
    """A runtime the gates are listed with, never run with (`Conductor` wants one)."""

    public_url = admin_url = ""

    def url_of(self, name: str) -> str:
        raise RuntimeError("the console lists gates; it never runs one")

    health_url_of = log_of = url_of

    def settle(self, revision: int, timeout: float) -> None:
        raise RuntimeError("the console lists gates; it never runs one")

    await_plane = settle


class Watcher:
    """Gathers the console's document, keeping what rates need between two gatherings."""

    def __init__(self, home: Home, runner: Runner, gate_settings: GateSettings | None = None):
        self.home = home
        self.runner = runner
        self.gate_settings = gate_settings or GateSettings()
        self._scrape: traffic.Scrape | None = None
        self._flows: list[traffic.Flow] = []
        self._processes: dict[int, psutil.Process] = {}
        self.spans: list[SpanRecord] = []

    def collect(self) -> dict[str, Any]:
        migration = self.home.workspace.migration()
        view = inspect(self.home, migration)
        record = read_run(self.home.run_file)
        problems = list(view.problems)
        admin = self._admin_facts(record, problems) if view.is_running else {}
        if record is not None and view.is_running:
            self._scrape_traffic(record, problems)
        self.spans = recent_spans(self.home.root / "traces", SPAN_WINDOW_SECONDS)
        return {
            "at": time.time(),
            "url": view.url,
            "running": view.is_running,
            "journey": self._journey(view, migration, admin.get("audit", [])),
            "routes": self._routes(view),
            "shadow": admin.get("shadow", {"routes": {}, "samples": []}),
            "breakers": admin.get("breakers", {}),
            "freezes": admin.get("freezes", []),
            "data": [asdict(context) for context in view.contexts],
            "processes": self._processes_of(view),
            "graph": self._graph(view),
            "traces": traces.summaries(self.spans),
            "action": self.runner.current.describe() if self.runner.current else None,
            "problems": problems,
        }

    def _admin_facts(self, record: RunRecord | None, problems: list[str]) -> dict[str, Any]:
        if record is None:
            return {}
        try:
            with ProxyAdmin(record.admin_url, self.home.admin_token(), timeout=3.0) as admin:
                shadow = admin.client.get("/shadow").json()
                return {
                    "audit": admin.audit(AUDIT_ENTRIES),
                    "shadow": shadow,
                    "breakers": admin.breakers(),
                    "freezes": admin.freezes(),
                }
        except (ProxyAdminError, httpx.HTTPError, ValueError) as error:
            problems.append(f"the proxy's admin API did not answer: {error}")
            return {}

    def _scrape_traffic(self, record: RunRecord, problems: list[str]) -> None:
        try:
            exposition = httpx.get(record.public_url + "/metrics", timeout=3.0).text
        except httpx.HTTPError as error:
            problems.append(f"the proxy's metrics did not answer: {error}")
            return
        scrape = traffic.parse(exposition, time.monotonic())
        self._flows = traffic.flows(self._scrape, scrape)
        self._scrape = scrape

    def _journey(
        self, view: SystemView, migration: Migration, audit: list[dict[str, Any]]
    ) -> dict[str, Any]:
        state = view.state
        moving = state.moving
        ahead = max(moving.from_stage, moving.to_stage) if moving else state.stage + 1
        gates: list[dict[str, Any]] = []
        if ahead <= migration.stages[-1].number:
            conductor = Conductor(self.home, migration, _Detached(), self.gate_settings)
            passed = set(moving.passed) if moving else set()
            for gate in gates_of(conductor, ahead):
                status = "passed" if gate.name in passed else "waiting"
                if moving is not None and moving.started == gate.name:
                    status = "running"
                gates.append({"name": gate.name, "title": gate.title, "status": status})
        return {
            "stage": state.stage,
            "title": view.title,
            "stages": [
                {
                    "number": stage.number,
                    "title": stage.title,
                    "summary": stage.summary,
                    "extracts": stage.extracts,
                    "done": stage.number <= state.stage,
                }
                for stage in migration.stages
            ],
            "moving": moving.model_dump(mode="json") if moving else None,
            "next_stage": ahead,
            "gates": gates,
            "thresholds": self.gate_settings.model_dump(mode="json"),
            "history": [event.model_dump(mode="json") for event in state.history[-20:]],
            "decisions": audit,
        }

    def _routes(self, view: SystemView) -> list[dict[str, Any]]:
        flows: dict[str, dict[str, dict[str, Any]]] = {}
        for flow in self._flows:
            side = "monolith" if flow.target == "monolith" else "service"
            flows.setdefault(flow.route, {})[side] = asdict(flow)
        found = []
        for route in view.routes:
            sides = flows.get(route.name, {})
            to_service = sides.get("service", {}).get("requests_per_second", 0.0)
            total = to_service + sides.get("monolith", {}).get("requests_per_second", 0.0)
            found.append(
                {
                    **asdict(route),
                    "served_ratio": round(to_service / total, 3) if total else None,
                    "sides": sides,
                }
            )
        return found

    def _processes_of(self, view: SystemView) -> list[dict[str, Any]]:
        found = []
        for process in view.processes:
            usage: dict[str, float | None] | None = (
                self._usage(process.pid) if process.is_running else None
            )
            if usage is None:
                usage = {"cpu_percent": None, "memory_mb": None}
            found.append({**asdict(process), **usage})
        return found

    def _usage(self, pid: int) -> dict[str, float | None] | None:
        """CPU (percent of one core, since the last look) and memory of a process and its
        workers."""
        try:
            leader = self._processes.get(pid) or psutil.Process(pid)
            self._processes[pid] = leader
            cpu = leader.cpu_percent(None)
            memory = leader.memory_info().rss
            for child in leader.children(recursive=True):
                known = self._processes.setdefault(child.pid, child)
                cpu += known.cpu_percent(None)
                memory += known.memory_info().rss
            return {"cpu_percent": round(cpu, 1), "memory_mb": round(memory / 2**20, 1)}
        except psutil.Error:
            self._processes.pop(pid, None)
            return None

    def _graph(self, view: SystemView) -> dict[str, Any]:
        """Who calls whom: clients to the proxy, the proxy to each side (its metrics), and
        process to process as recent traces show it (calls, events)."""
        edges: dict[tuple[str, str], dict[str, float]] = {}
        for flow in self._flows:
            for caller, callee in ((CLIENTS, PROXY), (PROXY, flow.target)):
                edge = edges.setdefault((caller, callee), {"rps": 0.0, "errors": 0.0})
                edge["rps"] += flow.requests_per_second
                edge["errors"] += flow.requests_per_second * flow.error_ratio
        for call in traces.calls(self.spans):
            if call.caller == PROXY:
                continue  # the proxy's own metrics count those, every request
            edge = edges.setdefault((call.caller, call.callee), {"rps": 0.0, "errors": 0.0})
            edge["rps"] += call.count / SPAN_WINDOW_SECONDS
            edge["errors"] += call.errors / SPAN_WINDOW_SECONDS
        nodes = sorted({CLIENTS, *(p.name for p in view.processes), *(n for e in edges for n in e)})
        return {
            "nodes": nodes,
            "edges": [
                {
                    "from": caller,
                    "to": callee,
                    "rps": round(edge["rps"], 2),
                    "error_ratio": round(edge["errors"] / edge["rps"], 4) if edge["rps"] else 0.0,
                }
                for (caller, callee), edge in sorted(edges.items())
            ],
        }
