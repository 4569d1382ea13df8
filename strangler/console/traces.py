"""Recent traces from the system's trace spool, as waterfalls, and who calls whom in them.

Every process of a system writes its finished spans to `.strangler/traces/`
(`strangler.plumbing.trace_spool`); this module groups them by trace, orders each trace's spans
as a tree (a child right under its parent, by start time), places each on the trace's time axis
for a waterfall, and counts the calls between processes (a span whose parent lives in another
process is one call from that process to this one). This module must never write a span.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from strangler.plumbing.trace_spool import SpanRecord


@dataclass(frozen=True)
class Call:
    """Calls from one process to another among recent spans."""

    caller: str
    callee: str
    count: int
    errors: int


def group(spans: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    return traces


def summaries(spans: list[SpanRecord], limit: int = 30) -> list[dict[str, Any]]:
    """The latest traces, newest first: root name, services, span count, duration, errors."""
    found: list[dict[str, Any]] = []
    for trace_id, members in group(spans).items():
        start = min(span.start for span in members)
        end = max(span.end for span in members)
        root = _root(members)
        found.append(
            {
                "trace_id": trace_id,
                "name": f"{root.service}: {root.name}",
                "services": sorted({span.service for span in members}),
                "spans": len(members),
                "start": start,
                "duration_ms": round((end - start) / 1e6, 2),
                "errors": sum(span.is_error for span in members),
            }
        )
    found.sort(key=lambda summary: int(summary["start"]), reverse=True)
    return found[:limit]


def waterfall(spans: list[SpanRecord], trace_id: str) -> dict[str, Any] | None:
    """One trace's spans in tree order, each with its depth and offset from the trace's start."""
    members = [span for span in spans if span.trace_id == trace_id]
    if not members:
        return None
    start = min(span.start for span in members)
    end = max(span.end for span in members)
    ids = {span.span_id for span in members}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in members:
        parent = span.parent_id if span.parent_id in ids else None
        children[parent].append(span)
    rows: list[dict[str, Any]] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda found: found.start):
            rows.append(
                {
                    "span_id": span.span_id,
                    "name": span.name,
                    "service": span.service,
                    "kind": span.kind,
                    "depth": depth,
                    "offset_ms": round((span.start - start) / 1e6, 3),
                    "duration_ms": round(span.milliseconds, 3),
                    "is_error": span.is_error,
                    "attributes": span.attributes,
                }
            )
            visit(span.span_id, depth + 1)

    visit(None, 0)
    return {"trace_id": trace_id, "duration_ms": round((end - start) / 1e6, 3), "spans": rows}


def calls(spans: list[SpanRecord]) -> list[Call]:
    """Calls between processes: a span whose parent span is another process's."""
    by_id = {span.span_id: span for span in spans}
    counted: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for span in spans:
        parent = by_id.get(span.parent_id or "")
        if parent is None or parent.service == span.service:
            continue
        tally = counted[(parent.service, span.service)]
        tally[0] += 1
        tally[1] += span.is_error
    return [
        Call(caller, callee, count, errors)
        for (caller, callee), (count, errors) in sorted(counted.items())
    ]


def _root(members: list[SpanRecord]) -> SpanRecord:
    ids = {span.span_id for span in members}
    roots = [span for span in members if span.parent_id not in ids]
    return min(roots or members, key=lambda span: span.start)
