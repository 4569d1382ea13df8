"""What an export is: the files a team deploys, and the report of what its target cannot express.

A route table holds features only the Python proxy implements in full (response diffs, sticky
canary on a verified subject with automatic analysis, write freezes, forced sides). Each export
lowers them to what its target has and says so, feature by feature: which routes lose what, and
what the export does instead. The `FEATURES` here are the words every report uses. This module
must never render a target's format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from strangler.gateways.targets import RouteTarget
from strangler_proxy.table import Mode

# The table's features a target may not express, named once for every report.
SHADOW_DIFFS = "shadow comparison"
STICKY_CANARY = "sticky canary"
CANARY_ANALYSIS = "canary analysis"
FORCED_SIDE = "forced side"
WRITE_FREEZE = "write freeze"
FALLBACK = "fallback to the monolith"
BREAKER = "circuit breaker"
MIRROR = "shadow mirroring"
CANARY_SPLIT = "canary split"
TIMEOUTS = "per-route timeouts"
PATH_RULES = "path rules"
MATCHING = "route matching"
REQUEST_ID = "request id and trace"
PROBLEMS = "problem+json errors"
FORWARDING = "forwarding headers"


@dataclass(frozen=True)
class Lowering:
    """One feature the target cannot express as the Python proxy does, and what happens instead."""

    feature: str
    routes: tuple[str, ...]  # the routes concerned; () for the whole table
    instead: str

    def line(self) -> str:
        where = ", ".join(self.routes) if self.routes else "every route"
        return f"- {self.feature} ({where}): {self.instead}"


@dataclass(frozen=True)
class Export:
    """The files of one export (relative path -> text) and its lowering report."""

    format: str
    files: dict[str, str]
    lowering: tuple[Lowering, ...] = field(default=())

    def report(self) -> str:
        """The lowering report as Markdown, one line per feature."""
        if not self.lowering:
            return f"# {self.format}: every feature of the table is expressed\n"
        lines = [f"# {self.format}: what this export cannot express", ""]
        lines.extend(lowering.line() for lowering in self.lowering)
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> list[Path]:
        """Write every file and the report (LOWERING.md) under `folder`; return their paths."""
        written = []
        for name, text in {**self.files, "LOWERING.md": self.report()}.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
        return written


def names(targets: Iterable[RouteTarget], *modes: Mode) -> tuple[str, ...]:
    return tuple(target.name for target in targets if target.route.mode in modes)


def common_lowerings(targets: list[RouteTarget]) -> list[Lowering]:
    """What no export can do: everything that needs the Python proxy's memory or its keys."""
    found = []
    shadowed = names(targets, Mode.SHADOW)
    if shadowed:
        found.append(
            Lowering(
                SHADOW_DIFFS,
                shadowed,
                "no response is compared (no mismatch rate, samples or learned noise): only"
                " the Python proxy diffs answers; run these routes through it to gate a move",
            )
        )
    analysed = tuple(t.name for t in targets if t.route.analysis is not None)
    if analysed:
        found.append(
            Lowering(
                CANARY_ANALYSIS,
                analysed,
                "the canary stays at the table's percentage: no step, no automatic rollback",
            )
        )
    canaries = names(targets, Mode.CANARY, Mode.SHADOW)
    if canaries:
        found.append(
            Lowering(
                FORCED_SIDE,
                canaries,
                "X-Strangler-Force is removed, never obeyed: no admin token is checked here",
            )
        )
    found.append(
        Lowering(
            WRITE_FREEZE,
            (),
            "writes are never held: a context's cutover needs the Python proxy in the path"
            " (or the team's own maintenance switch) for its freeze",
        )
    )
    return found
