"""The figures a load comparison's report is made of, computed from a `Comparison`.

Pure functions over the measured windows: the knee of each architecture's step load, the
reference window every architecture is compared at, percentiles merged from locust's
histograms, the isolation experiment, the CPU spent per 1,000 requests by role, and warnings
that the load generator itself was saturated. The sentences built from them live in
`strangler.compare.verdict`. This module must never measure, write files or hard-code a conclusion.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy

from strangler.compare.results import (
    AGGREGATED,
    Architecture,
    Comparison,
    Endpoint,
    Settings,
    Window,
)

GENERATOR_BUSIEST_CORE_BOUND = 0.9  # a locust process this busy can no longer keep its pace
GENERATOR_MACHINE_SHARE_BOUND = 0.25  # the generator takes this share of the machine's cores


def qualifies(window: Window, settings: Settings) -> bool:
    """Whether a window stays under the p95 bound and the error bound."""
    p95 = window.total.p95_ms
    return (
        window.total.requests > 0
        and p95 is not None
        and p95 <= settings.p95_bound_ms
        and window.total.error_rate <= settings.error_bound
    )


def knee(architecture: Architecture, settings: Settings) -> Window | None:
    """The step with the highest throughput whose p95 and error rate stay under the bounds."""
    candidates = [window for window in architecture.steps if qualifies(window, settings)]
    return max(candidates, key=lambda window: window.total.requests_per_second, default=None)


def reference(architecture: Architecture, settings: Settings) -> Window | None:
    """The step at `settings.reference_users`: where architectures are compared side by side."""
    return next(
        (window for window in architecture.steps if window.users == settings.reference_users),
        None,
    )


def endpoint_names(comparison: Comparison) -> list[str]:
    """Every request name any window saw, the aggregated row left out, in a stable order."""
    names = {
        found.name
        for architecture in comparison.architectures
        for window in architecture.windows
        for found in window.endpoints
    }
    names.discard(AGGREGATED)
    return sorted(names)


def at_reference(comparison: Comparison) -> dict[str, dict[str, Endpoint]]:
    """Endpoint name -> architecture key -> its figures in that architecture's reference window."""
    table: dict[str, dict[str, Endpoint]] = {name: {} for name in endpoint_names(comparison)}
    for architecture in comparison.architectures:
        window = reference(architecture, comparison.settings)
        for found in window.endpoints if window else []:
            if found.name in table:
                table[found.name][architecture.key] = found
    return table


def merged_percentile(histograms: Iterable[dict[int, int]], quantile: float) -> float | None:
    """The `quantile` (0..1) of the response times of several endpoints taken together.

    Locust's own rule (`calculate_response_time_percentile`): the time at position
    int(n * quantile) of the sorted times, so one endpoint's merged p95 is locust's p95.
    """
    merged: Counter[int] = Counter()
    for histogram in histograms:
        merged.update(histogram)
    total = sum(merged.values())
    if not total:
        return None
    times = numpy.array(sorted(merged))
    counts = numpy.array([merged[time] for time in times])
    below = numpy.cumsum(counts) - counts  # requests strictly faster than each time
    position = min(int(total * quantile), total - 1)
    return float(times[numpy.searchsorted(below, position, side="right") - 1])


@dataclass(frozen=True)
class Isolation:
    """How the other endpoints' p95 moved when hot searchers joined, in one architecture."""

    architecture: str
    others_reference_p95_ms: float | None  # every endpoint but the hot one, merged
    others_hot_p95_ms: float | None
    hot_endpoint_reference_p95_ms: float | None
    hot_endpoint_hot_p95_ms: float | None
    per_endpoint: dict[str, tuple[float | None, float | None]]  # name -> (reference, hot) p95

    @property
    def ratio(self) -> float | None:
        """Others' p95 under the hot load over their p95 without it: 1.0 is perfect isolation."""
        return _ratio(self.others_hot_p95_ms, self.others_reference_p95_ms)


def isolation(architecture: Architecture, settings: Settings) -> Isolation | None:
    """The isolation experiment in one architecture; None without both of its windows."""
    base, hot = reference(architecture, settings), architecture.hot
    if base is None or hot is None:
        return None
    names = sorted(
        {found.name for found in base.endpoints + hot.endpoints}
        - {AGGREGATED, settings.hot_endpoint}
    )
    return Isolation(
        architecture=architecture.key,
        others_reference_p95_ms=_others_p95(base, settings.hot_endpoint),
        others_hot_p95_ms=_others_p95(hot, settings.hot_endpoint),
        hot_endpoint_reference_p95_ms=_p95(base, settings.hot_endpoint),
        hot_endpoint_hot_p95_ms=_p95(hot, settings.hot_endpoint),
        per_endpoint={name: (_p95(base, name), _p95(hot, name)) for name in names},
    )


def _others_p95(window: Window, hot_endpoint: str) -> float | None:
    others = [
        found.histogram
        for found in window.endpoints
        if found.name not in (AGGREGATED, hot_endpoint)
    ]
    return merged_percentile(others, 0.95)


def _p95(window: Window, name: str) -> float | None:
    found = window.endpoint(name)
    return found.p95_ms if found else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Cost:
    """What one window cost: CPU per 1,000 requests (all and by role), memory, cores in use."""

    window: Window
    cpu_per_1000: float | None
    cpu_per_1000_by_role: dict[str, float]
    cores_by_role: dict[str, float]  # CPU seconds over the window's seconds
    peak_memory_mib: float
    generator_cores: float

    @property
    def cores(self) -> float:
        return sum(self.cores_by_role.values())


def cost(window: Window) -> Cost:
    """The window's resources related to its request count and its length."""
    requests, seconds = window.total.requests, window.seconds or 1.0
    by_role = window.resources.cpu_seconds_by_role
    return Cost(
        window=window,
        cpu_per_1000=window.cpu_seconds_per_1000,
        cpu_per_1000_by_role=(
            {role: 1000 * spent / requests for role, spent in by_role.items()} if requests else {}
        ),
        cores_by_role={role: spent / seconds for role, spent in by_role.items()},
        peak_memory_mib=window.resources.peak_memory_mib,
        generator_cores=window.resources.generator_cpu_seconds / seconds,
    )


def peak_memory(architecture: Architecture) -> float | None:
    """The largest memory any window of the architecture saw (MiB)."""
    return max((window.resources.peak_memory_mib for window in architecture.windows), default=None)


def role_capacity(architecture: Architecture, role: str) -> int:
    """How many cores a role's processes can use at most: one per worker or per process."""
    names = [name for name, found in architecture.processes.items() if found == role]
    if not names:
        return architecture.workers.get(role, 1)
    return sum(architecture.workers.get(name, 1) for name in names)


def generator_warnings(comparison: Comparison) -> dict[str, list[str]]:
    """Architecture key -> one line per window whose load generator may have been the limit."""
    cpus = float(comparison.machine.get("cpus") or 0)
    warnings: dict[str, list[str]] = {}
    for architecture in comparison.architectures:
        for window in architecture.windows:
            found = _generator_warning(window, cpus)
            if found:
                warnings.setdefault(architecture.key, []).append(found)
    return warnings


def _generator_warning(window: Window, cpus: float) -> str | None:
    where = f"{window.phase} at {window.users} users" + (
        f" + {window.hot_users} hot" if window.hot_users else ""
    )
    busiest = window.resources.generator_busiest_core
    if busiest >= GENERATOR_BUSIEST_CORE_BOUND:
        return (
            f"{where}: the busiest locust process used {busiest:.0%} of a core; "
            "the generator, not the system, may have set the pace"
        )
    share = cost(window).generator_cores / cpus if cpus else 0.0
    if share >= GENERATOR_MACHINE_SHARE_BOUND:
        return (
            f"{where}: the generator used {share:.0%} of the machine's {cpus:g} cores, "
            "CPU the system under test did not have"
        )
    return None
