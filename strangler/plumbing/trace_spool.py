"""The trace spool: every process's recent spans, one JSON line each, in a shared folder.

When no tracing backend is configured, `strangler up` gives each process the folder
`.strangler/traces/` (`STRANGLER_TRACES_DIR`); the `SpoolExporter` there appends finished spans
to `<service>-<pid>.jsonl` from the span processor's background thread (never on a request's
path). A file past `max_bytes` is moved to `.old` and started afresh, so a process keeps at
most twice that on disk. `recent_spans` reads the ends of those files back: the console builds
its trace waterfalls from them. This module must never keep more than it is told to.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

MAX_FILE_BYTES = 2 * 1024 * 1024
READ_BYTES = 512 * 1024  # of each file's end, when reading back
KEPT_ATTRIBUTES = (
    "http.request.method", "http.method", "http.route", "http.target", "url.path",
    "http.response.status_code", "http.status_code", "db.system", "db.system.name",
    "db.statement", "db.query.text", "server.address", "server.port", "url.full",
    "messaging.operation", "messaging.destination.name", "messaging.message.id",
    "strangler.route", "strangler.upstream", "strangler.fallback", "strangler.shadow",
    "error.type",
)  # fmt: skip
MAX_ATTRIBUTE_CHARS = 300


@dataclass
class SpanRecord:
    """One finished span as the spool keeps it (times in epoch nanoseconds)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: int
    end: int
    is_error: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def milliseconds(self) -> float:
        return (self.end - self.start) / 1e6


def to_record(span: ReadableSpan, service: str) -> SpanRecord | None:
    context = span.context
    if context is None or span.start_time is None or span.end_time is None:
        return None
    parent = span.parent
    attributes = {
        name: _short(value)
        for name in KEPT_ATTRIBUTES
        if (value := (span.attributes or {}).get(name)) is not None
    }
    return SpanRecord(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{parent.span_id:016x}" if parent is not None else None,
        name=span.name,
        kind=span.kind.name.lower(),
        service=service,
        start=span.start_time,
        end=span.end_time,
        is_error=span.status.status_code is StatusCode.ERROR,
        attributes=attributes,
    )


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
        return value[:MAX_ATTRIBUTE_CHARS] + "..."
    return value if isinstance(value, str | int | float | bool) else str(value)


class SpoolExporter(SpanExporter):
    """Appends finished spans to this process's file in the spool folder."""

    def __init__(self, folder: Path, service: str, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.folder = folder
        self.service = service
        self.max_bytes = max_bytes

    @property
    def path(self) -> Path:
        # Read at every export: a forked worker writes its own file, not its parent's.
        return self.folder / f"{self.service}-{os.getpid()}.jsonl"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            record = to_record(span, self.service)
            if record is not None:
                lines.append(json.dumps(record.__dict__, separators=(",", ":")) + "\n")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.path
            if path.exists() and path.stat().st_size > self.max_bytes:
                path.replace(path.with_suffix(".old"))
            with path.open("a", encoding="utf-8") as spool:
                spool.write("".join(lines))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def recent_spans(
    folder: Path, max_age_seconds: float = 900.0, read_bytes: int = READ_BYTES
) -> list[SpanRecord]:
    """The spans the folder's files end with, from files written in the last `max_age_seconds`."""
    found: list[SpanRecord] = []
    if not folder.is_dir():
        return found
    oldest = time.time() - max_age_seconds
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".jsonl", ".old"):
            continue
        try:
            if path.stat().st_mtime < oldest:
                continue
            found.extend(_read_tail(path, read_bytes))
        except OSError:
            continue
    return found


def _read_tail(path: Path, read_bytes: int) -> list[SpanRecord]:
    with path.open("rb") as spool:
        spool.seek(0, os.SEEK_END)
        size = spool.tell()
        spool.seek(max(0, size - read_bytes))
        text = spool.read().decode("utf-8", errors="replace")
    lines = text.splitlines()
    if size > read_bytes and lines:
        lines = lines[1:]  # the first line was cut
    records = []
    for line in lines:
        try:
            records.append(SpanRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a line being written as we read
    return records
