"""`strangler check`: is the running system really at the stage it says? The workshop checkpoint.

Checks, each passed or failed with its reason: no move is under way; no write freeze is in
force; the proxy serves exactly the stage's table (every route's mode, canary percentage and
data owner, and who answers unknown paths); every process the stage needs runs and is healthy,
and no other; each context's data has one owner, the one the stage says, in every record that
names it (the durable state, the data path's own row, the routes its writes take), with no
cutover half-done, and its sync is caught up; both copies of every moved context's data agree
(ids handed out by both sides, a write lost on one of them, would show here); and the reads
the workspace names answer through the public entry as it says, each from the side the stage
says (the proxy's own counters tell who answered). This module must never change the system.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from strangler.conductor.conductor import Conductor
from strangler.conductor.inspection import SystemView, inspect
from strangler.datapath import apply, verify
from strangler.datapath.contexts import Direction, Owner
from strangler.gateways.nginx_control import nginx_targets
from strangler.gateways.nginx_routing import PYTHON_PROXY
from strangler.runtime.plan import NGINX, plan
from strangler.runtime.run_record import read_run
from strangler.runtime.topology import stage_topology
from strangler.workspace.stages import Stage
from strangler_proxy.table import table_document


@dataclass(frozen=True)
class Finding:
    check: str
    passed: bool
    detail: str


def check(conductor: Conductor) -> list[Finding]:
    """Every check of the current stage, in order."""
    state = conductor.refresh()
    stage = conductor.migration.stage(state.stage)
    view = inspect(conductor.home, conductor.migration)
    frozen = sorted(name for name in state.contexts if state.live_lease(name) is not None)
    findings = [
        Finding("no move under way", state.moving is None, _moving(conductor)),
        Finding(
            "no write freeze in force", not frozen, f"frozen: {', '.join(frozen) or 'none'}"
        ),
        _table(stage, view),
        _processes(conductor, stage, view),
    ]
    findings.extend(_data(conductor, stage, view))
    findings.extend(_copies(conductor, stage))
    findings.extend(_reads(conductor, stage))
    return findings


def _moving(conductor: Conductor) -> str:
    moving = conductor.state.moving
    if moving is None:
        return f"at stage {conductor.state.stage}"
    return f"stage {moving.from_stage} -> {moving.to_stage}, passed {moving.passed}"


def _comparable(route: dict[str, Any]) -> tuple[Any, ...]:
    mode = route.get("mode", "monolith")
    owner = route.get("data_owner") or ("service" if mode == "service" else "monolith")
    percent = route.get("canary_percent", 0) if mode == "canary" else 0
    return (route["name"], tuple(route["methods"]), route["path"], route.get("context"), mode,
            percent, owner, route.get("active", True))  # fmt: skip


def _table(stage: Stage, view: SystemView) -> Finding:
    name = f"the proxy serves the table of stage {stage.number}"
    if view.table_version is None:
        return Finding(name, False, "the proxy did not describe its routes")
    expected = {_comparable(route) for route in table_document(stage.table)["routes"]}
    live = {
        (r.name, tuple(r.methods), r.path, r.context, r.mode,
         r.canary_percent if r.mode == "canary" else 0, r.data_owner, True)
        for r in view.routes
    }  # fmt: skip
    differ = sorted({found[0] for found in expected ^ live})
    if view.unmatched != stage.table.unmatched:
        differ.append(f"unmatched ({view.unmatched} instead of {stage.table.unmatched})")
    detail = f"{len(view.routes)} routes as the stage says" if not differ else f"differ: {differ}"
    return Finding(name, not differ, detail)


def _processes(conductor: Conductor, stage: Stage, view: SystemView) -> Finding:
    topology = stage_topology(conductor.migration, stage.number)
    places = conductor.home.places(_data_plane(conductor))
    wanted = {spec.name for spec in plan(topology, places, lambda _: 0)}
    running = {process.name for process in view.processes if process.is_running}
    unhealthy = sorted(p.name for p in view.processes if p.is_running and not p.is_healthy)
    missing, extra = sorted(wanted - running), sorted(running - wanted)
    problems = [
        *(f"{name} not running" for name in missing),
        *(f"{name} runs but the stage does not need it" for name in extra),
        *(f"{name} not healthy" for name in unhealthy),
    ]
    detail = "; ".join(problems) or f"{len(wanted)} processes, all healthy"
    return Finding("every process the stage needs runs, healthy", not problems, detail)


def _data(conductor: Conductor, stage: Stage, view: SystemView) -> Iterator[Finding]:
    limit = conductor.settings.max_sync_lag
    for context in view.contexts:
        if not conductor.migration.contexts[context.context].moves_data:
            continue
        expected = "service" if context.context in stage.services_own else "monolith"
        recorded = conductor.state.owner_of(context.context)
        routed = {r.data_owner for r in view.routes if r.context == context.context
                  and not set(r.methods) <= {"GET", "HEAD", "OPTIONS"}}  # fmt: skip
        problems = []
        if context.owner != expected:
            problems.append(f"owned by the {context.owner or 'unknown'}, not the {expected}")
        if recorded != expected:
            problems.append(f"the state says the {recorded} owns it, not the {expected}")
        if routed and routed != {expected}:
            problems.append(f"its writes go to the {' and the '.join(sorted(routed))}")
        if context.operation:
            problems.append(f"a {context.operation} stopped at {context.step!r}")
        if expected == "service" and context.behind > limit:
            problems.append(f"its sync is {context.behind} changes behind")
        detail = "; ".join(problems) or f"owned by the {expected}, sync {context.behind} behind"
        yield Finding(f"{context.context} data", not problems, detail)




def _copies(conductor: Conductor, stage: Stage) -> Iterator[Finding]:
    """Both copies of each moved context's data agree, once the feed that keeps the other
    side current has drained (a range that differs is asked again, for a write in flight)."""
    for context in stage.services_own:
        if context in stage.serverless:
            yield _items_agree(conductor, context)
            continue
        try:
            with conductor.link(context) as link:
                direction = Direction.REVERSE
                report = verify.verify(link, direction)
                for _ in range(3):
                    if report.is_equal:
                        break
                    apply.drain(link, link.context.directions(Owner.SERVICE))
                    report = verify.verify_ranges(link, direction, report.differences)
        except Exception as error:  # a database that cannot be read fails this check, not all
            detail = f"{type(error).__name__}: {error}"
            yield Finding(f"{context}: both copies agree", False, detail)
            continue
        shown = "; ".join(difference.describe() for difference in report.differences[:2])
        detail = (f"{report.rows:,} rows, every chunk's checksum equal" if report.is_equal
                  else f"{len(report.differences)} key ranges differ: {shown}")  # fmt: skip
        yield Finding(f"{context}: both copies agree", report.is_equal, detail)


def _items_agree(conductor: Conductor, context: str) -> Finding:
    """The items of a context extracted to functions and the monolith's rows agree, once the
    reverse feed has drained."""
    from strangler.serverless.data import reverse
    from strangler.serverless.data import verify as items_verify

    try:
        with conductor.items_link(context) as link:
            timeout = conductor.settings.timeout_seconds
            report = items_verify.verify_drained(link, lambda: reverse.drain(link, timeout))
    except Exception as error:  # an emulator or a database that cannot be read fails this one
        return Finding(f"{context}: both copies agree", False, f"{type(error).__name__}: {error}")
    rows = sum(count.rows for count in report.counts.values())
    shown = "; ".join(difference.describe() for difference in report.differences[:2])
    detail = (f"{rows:,} rows and their items, every range's checksum equal" if report.is_equal
              else f"{len(report.differences)} key ranges differ: {shown}")  # fmt: skip
    return Finding(f"{context}: both copies agree", report.is_equal, detail)


def _reads(conductor: Conductor, stage: Stage) -> Iterator[Finding]:
    """The reads answer as the contract says, each from the side the stage's table names."""
    served_by = {
        route.name: route.context if route.mode.value == "service" else "monolith"
        for route in stage.table.routes
    }
    reads = conductor.home.workspace.spec.check.get("reads", [])
    before = _answered(conductor.url)
    ids = [f"check-{uuid.uuid4().hex[:12]}-{number}" for number in range(len(reads))]
    with httpx.Client(base_url=conductor.url, timeout=10) as client:
        for read, request_id in zip(reads, ids, strict=True):
            answer = client.get(read.path, headers={"X-Request-ID": request_id})
            kind = answer.headers.get("content-type", "?")
            shaped = _shaped(answer, read.status)
            yield Finding(f"GET {read.path}", shaped, f"{answer.status_code} {kind}")
    after = _answered(conductor.url)
    # Under nginx, a route at rest is answered without the Python proxy: its access log says
    # who answered (a request it passed to the proxy is in the proxy's counts).
    direct: dict[str, str] = {}
    if _data_plane(conductor) == "nginx":
        direct = nginx_targets(conductor.home.root / NGINX, ids)
    wrong = []
    for read, request_id in zip(reads, ids, strict=True):
        name = read.route or "unmatched"
        side = served_by[read.route] if read.route else stage.table.unmatched
        served = {
            target
            for (answered, target), count in after.items()
            if answered == name and count > before.get((answered, target), 0)
        }
        if direct.get(request_id, PYTHON_PROXY) != PYTHON_PROXY:
            served.add(direct[request_id])
        if served != {side}:
            wrong.append(f"{name} answered by {sorted(served) or 'nobody'}, not {side}")
    detail = "; ".join(wrong) or "every one"
    yield Finding("each read answered by the side the stage says", not wrong, detail)


def _shaped(answer: httpx.Response, expected: int) -> bool:
    """The status the workspace expects, a request id, and a body that is what it says it is
    (a JSON content type must parse)."""
    if answer.status_code != expected or "x-request-id" not in answer.headers:
        return False
    if "json" in answer.headers.get("content-type", ""):
        try:
            answer.json()
        except ValueError:
            return False
    return True


def _data_plane(conductor: Conductor) -> str:
    record = read_run(conductor.home.run_file)
    return "python" if record is None else record.data_plane


def _answered(url: str) -> dict[tuple[str, str], float]:
    """The proxy's request counts by (route, target)."""
    found: dict[tuple[str, str], float] = {}
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "proxy_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["route"], sample.labels["target"])
                    found[key] = found.get(key, 0) + sample.value
    return found
