"""The figures a load comparison's report is made of, computed from a `Comparison`.

Pure functions over the measured windows: the limit each architecture's search found (or did
not reach), the reference window every architecture is compared at, percentiles merged from
locust's histograms, the isolation experiment, the CPU spent per 1,000 requests by role (at the
limit, at the reference rate, and with no traffic), the CPU-additive prediction of the
throughput ratio, and warnings that the load generator itself was saturated. The sentences
built from them live in `strangler.compare.verdict`. This module must never measure, write
files or hard-code a conclusion.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy

from strangler.compare.results import (
    AGGREGATED,
    DATABASE_ROLE,
    Architecture,
    Comparison,
    Endpoint,
    Settings,
    Window,
)

MIN_SAMPLES = 20  # a p95 of fewer requests is one of its few slowest: shown greyed, not judged
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


@dataclass(frozen=True)
class Limit:
    """What an architecture's limit search found."""

    window: Window | None  # the fastest step under both bounds (None: the first step broke one)
    broken: Window | None  # the first step that broke a bound (None: the limit was not reached)
    steps: int

    @property
    def is_reached(self) -> bool:
        return self.window is not None and self.broken is not None

    @property
    def rate(self) -> float | None:
        """req/s at the limit, or the most the search saw under the bounds if not reached."""
        return self.window.total.requests_per_second if self.window else None

    def text(self) -> str:
        """'412 req/s', 'limit not reached at 412 req/s', or why there is no limit."""
        if self.window is None:
            assert self.broken is not None
            return f"no step under the bounds (the first, {self.broken.users} users, broke them)"
        if self.broken is None:
            return f"limit not reached at {self.window.total.requests_per_second:,.0f} req/s"
        return f"{self.window.total.requests_per_second:,.0f} req/s"


def limit(architecture: Architecture, settings: Settings) -> Limit | None:
    """The fastest of the search's steps under the p95 and error bounds before the first
    that broke one: the last of them while throughput grows with users, an earlier one where
    more users served fewer requests (contention: locks, workers); None when the
    architecture has no search step (it failed before)."""
    steps = architecture.search
    if not steps:
        return None
    good: list[Window] = []
    broken = None
    for window in steps:
        if not qualifies(window, settings):
            broken = window
            break
        good.append(window)
    fastest = max(good, key=lambda window: window.total.requests_per_second, default=None)
    return Limit(fastest, broken, len(steps))


def limit_window(architecture: Architecture, settings: Settings) -> Window | None:
    """The window at the limit (reached or not); None without a step under the bounds."""
    found = limit(architecture, settings)
    return found.window if found else None


def reference(architecture: Architecture, settings: Settings) -> Window | None:
    """The reference load's window: the same fixed rate in every architecture."""
    return architecture.reference


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
    """How the other endpoints' p95 moved when the hot users joined, in one architecture."""

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


def background(architecture: Architecture) -> Cost | None:
    """What the architecture costs with no traffic at all: its polling (cores by role)."""
    return cost(architecture.idle) if architecture.idle else None


DISAGREEMENT = 0.3  # prediction and measure further apart than this share are flagged


@dataclass(frozen=True)
class Prediction:
    """The CPU-additive model for one architecture: if CPU is what runs out, throughput at
    equal CPU goes as 1 / CPU per request, so its ratio to the monolith alone is
    C_app / (C_app + C_proxy + C_hops), CPU milliseconds per request at each limit:
    C_app the monolith alone's, C_proxy the proxy's, C_hops all the rest the architecture
    spends beyond them (services' extra work, serialising for hops, events, sync)."""

    architecture: str
    app_ms: float
    proxy_ms: float
    hops_ms: float
    measured: float | None  # its limit over the monolith's

    @property
    def predicted(self) -> float:
        return self.app_ms / (self.app_ms + self.proxy_ms + self.hops_ms)

    @property
    def is_flagged(self) -> bool:
        """Measured and predicted ratios far apart: CPU is not what set the limit."""
        if self.measured is None or self.measured <= 0 or self.predicted <= 0:
            return False
        return abs(math.log(self.measured / self.predicted)) > math.log(1 + DISAGREEMENT)


def predictions(comparison: Comparison) -> list[Prediction]:
    """The CPU-additive prediction of every architecture with a limit, beside the measure;
    empty without the monolith alone's limit (the model's C_app)."""
    settings = comparison.settings
    direct = comparison.architecture("direct")
    base = limit_window(direct, settings) if direct else None
    if base is None or not base.total.requests or not base.resources.cpu_seconds:
        return []
    app_ms = 1000 * base.resources.cpu_seconds / base.total.requests
    found = []
    for architecture in comparison.architectures:
        window = limit_window(architecture, settings)
        if window is None or not window.total.requests:
            continue
        per_request = {
            role: 1000 * spent / window.total.requests
            for role, spent in window.resources.cpu_seconds_by_role.items()
        }
        proxy_ms = per_request.get("proxy", 0.0)
        hops_ms = sum(per_request.values()) - proxy_ms - app_ms
        measured = window.total.requests_per_second / base.total.requests_per_second
        found.append(Prediction(architecture.key, app_ms, proxy_ms, hops_ms, measured))
    return found


# Published throughput ratios of microservices to a monolith, quoted as context.
PUBLISHED = (
    ("Ueda et al. 2016, Acme Air (Node.js and Java) on one host",
     "microservices at 0.21-0.30x of the monolith's throughput"),
    ("Al-Debagy and Martinek 2018, a Java application",
     "the monolith about 6% ahead in throughput"),
    ("Blinowski et al. 2022, Java and C# on one machine and on Azure",
     "the monolith ahead on one machine; microservices ahead only when scaled out"),
)  # fmt: skip


def peak_memory(architecture: Architecture) -> float | None:
    """The largest memory any window of the architecture saw (MiB)."""
    return max((window.resources.peak_memory_mib for window in architecture.windows), default=None)


def role_capacity(architecture: Architecture, role: str) -> int | None:
    """How many cores a role's processes can use at most: one per worker or per process; None
    for a database server, which starts a process per connection."""
    if role == DATABASE_ROLE:
        return None
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
