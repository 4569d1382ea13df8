"""The diff of two saved load comparison reports: before and after a change.

For every architecture both reports measured: the limit, the p95 and the CPU per 1,000 requests
at the reference load, the peak memory and the isolation ratio, each with its change in % and
flagged as a regression past a threshold. Architectures in only one report are listed. Two
reports whose settings make their figures incomparable (search, window, bounds, worker budget,
reference or hot load) are refused unless forced. This module must never measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from strangler.compare import analysis
from strangler.compare.results import Architecture, Comparison, Settings

COMPARABLE = (  # settings that must be equal for two reports' figures to mean the same thing
    "start_users",
    "max_users",
    "search_seconds",
    "window_seconds",
    "p95_bound_ms",
    "error_bound",
    "worker_budget",
    "reference_rate",
    "reference_users",
    "hot_users",
    "hot_endpoint",
    "hop_latency_ms",
)


class Incomparable(ValueError):
    """The two reports were run with settings that make their figures incomparable."""


@dataclass(frozen=True)
class Thresholds:
    """How far a figure may move the wrong way before it is a regression (fractions)."""

    limit_drop: float = 0.10
    p95_rise: float = 0.20
    cpu_rise: float = 0.15
    memory_rise: float = 0.20
    isolation_rise: float = 0.20


@dataclass(frozen=True)
class Figure:
    """One figure compared: how to read it off an architecture, which way is better."""

    name: str
    read: Callable[[Architecture, Settings], float | None]
    is_higher_better: bool
    threshold: float


@dataclass(frozen=True)
class Change:
    """One figure of one architecture, before and after."""

    architecture: str
    figure: str
    before: float | None
    after: float | None
    is_regression: bool

    @property
    def percent(self) -> float | None:
        if self.before is None or self.after is None or not self.before:
            return None
        return 100 * (self.after - self.before) / self.before


@dataclass(frozen=True)
class ReportDiff:
    """Every change, and the architectures only one report has."""

    changes: list[Change]
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # settings that differ (when forced)

    @property
    def regressions(self) -> list[Change]:
        return [change for change in self.changes if change.is_regression]


def setting_differences(before: Settings, after: Settings) -> list[str]:
    """One line per setting that makes the two reports incomparable."""
    return [
        f"{name}: {getattr(before, name)!r} before, {getattr(after, name)!r} after"
        for name in COMPARABLE
        if getattr(before, name) != getattr(after, name)
    ]


def figures(settings: Settings, thresholds: Thresholds) -> list[Figure]:
    rate = f"{settings.reference_rate:g} req/s"
    return [
        Figure("limit req/s", _limit, True, thresholds.limit_drop),
        Figure(f"p95 at {rate} (ms)", _p95, False, thresholds.p95_rise),
        Figure(f"CPU s / 1,000 req at {rate}", _cpu, False, thresholds.cpu_rise),
        Figure("peak memory (MiB)", _memory, False, thresholds.memory_rise),
        Figure("isolation: others' p95 x", _isolation, False, thresholds.isolation_rise),
    ]


def diff(
    before: Comparison,
    after: Comparison,
    thresholds: Thresholds | None = None,
    is_forced: bool = False,
) -> ReportDiff:
    """Compare two reports; raises `Incomparable` on differing settings unless forced."""
    differences = setting_differences(before.settings, after.settings)
    if differences and not is_forced:
        raise Incomparable("the reports are not comparable: " + "; ".join(differences))
    keys_after = {architecture.key for architecture in after.architectures}
    changes = []
    for old in before.architectures:
        new = after.architecture(old.key)
        if new is None:
            continue
        for figure in figures(after.settings, thresholds or Thresholds()):
            changes.append(_change(old, new, before.settings, after.settings, figure))
    return ReportDiff(
        changes=changes,
        only_before=[found.title for found in before.architectures if found.key not in keys_after],
        only_after=[
            found.title for found in after.architectures if before.architecture(found.key) is None
        ],
        differences=differences,
    )


def _change(
    old: Architecture, new: Architecture, before: Settings, after: Settings, figure: Figure
) -> Change:
    was, now = figure.read(old, before), figure.read(new, after)
    if was is None or now is None:
        # a limit that is gone is the worst regression of all; other gaps are shown, not judged
        is_regression = figure.is_higher_better and was is not None and now is None
    elif figure.is_higher_better:
        is_regression = now < was * (1 - figure.threshold)
    else:
        is_regression = now > was * (1 + figure.threshold)
    return Change(new.title, figure.name, was, now, is_regression)


def _limit(architecture: Architecture, settings: Settings) -> float | None:
    found = analysis.limit_window(architecture, settings)
    return found.total.requests_per_second if found else None


def _p95(architecture: Architecture, settings: Settings) -> float | None:
    found = analysis.reference(architecture, settings)
    return found.total.p95_ms if found else None


def _cpu(architecture: Architecture, settings: Settings) -> float | None:
    found = analysis.reference(architecture, settings)
    return found.cpu_seconds_per_1000 if found else None


def _memory(architecture: Architecture, settings: Settings) -> float | None:
    return analysis.peak_memory(architecture)


def _isolation(architecture: Architecture, settings: Settings) -> float | None:
    found = analysis.isolation(architecture, settings)
    return found.ratio if found else None


HEADERS = ["architecture", "figure", "before", "after", "change", "verdict"]


def cells(change: Change) -> list[str]:
    digits = 2 if change.figure.startswith(("CPU", "isolation")) else 0
    percent = change.percent
    return [
        change.architecture,
        change.figure,
        _number(change.before, digits),
        _number(change.after, digits),
        "-" if percent is None else f"{percent:+.1f}%",
        "REGRESSION" if change.is_regression else "ok",
    ]


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def notes(found: ReportDiff) -> list[str]:
    notes = [f"settings differ (forced): {line}" for line in found.differences]
    if found.only_before:
        notes.append("only in the report before: " + ", ".join(found.only_before))
    if found.only_after:
        notes.append("only in the report after: " + ", ".join(found.only_after))
    count = len(found.regressions)
    notes.append(f"{count} regression(s)" if count else "no regression")
    return notes


def markdown(found: ReportDiff) -> str:
    """The diff as Markdown: a table, then the notes."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    for change in found.changes:
        row = cells(change)
        if change.is_regression:
            row[-1] = "**REGRESSION**"
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *[f"- {note}" for note in notes(found)]]
    return "\n".join(lines) + "\n"
