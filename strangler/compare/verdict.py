"""The verdict of a load comparison: plain sentences computed from `strangler.compare.analysis`
figures.

`verdict` is what a team lead reads first: at most five sentences, each with its number,
comparing the monolith alone with the full split (the last stage measured): what the split
costs at equal CPU (its limit over the monolith's), what it buys (isolation under a hot spot,
latency at the reference load), where its CPU goes (by role, and its polling with no traffic),
and what more machines would change. `details` follows it in the report: every architecture's
limit, the rankings, the overhead by role and the generator warnings. Every number a sentence
states is one the report shows (or the ratio of two it shows). This module must never
hard-code which architecture wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from strangler.compare import analysis
from strangler.compare.results import DATABASE_ROLE, EMULATOR_ROLE, Architecture, Comparison

OVERHEAD_ROLES = ("proxy", "events", "sync")  # CPU the monolith alone does not spend
CPU_BOUND_SHARE = 0.8  # the machine counts as CPU-bound past this share of its cores
SAME = 0.05  # two figures within 5% of each other are "about the same"
SHARED_LOAD = 0.5  # a load average past this share of the cores at the start: a shared machine


@dataclass(frozen=True)
class Ranked:
    """One architecture's figure in a ranking."""

    architecture: Architecture
    value: float


def sides(comparison: Comparison) -> tuple[Architecture, Architecture] | None:
    """The monolith (alone if measured) and the full split (the highest stage measured)."""
    measured = [found for found in comparison.architectures if found.windows]
    if len(measured) < 2:
        return None
    monolith = comparison.architecture("direct") or measured[0]
    split = max(measured, key=lambda found: -1 if found.stage is None else found.stage)
    return (monolith, split) if split is not monolith else None


def verdict(comparison: Comparison) -> list[str]:
    """The report's first words: at most five sentences, each with its number."""
    found = sides(comparison)
    if found is None:
        return [_single(comparison)]
    monolith, split = found
    sentences = [
        _equal_cpu(comparison, monolith, split),
        _isolation_bought(comparison, monolith, split),
        _latency_bought(comparison, monolith, split),
        _where_cpu_goes(comparison, monolith, split),
        _more_machines(comparison, monolith, split),
    ]
    return [sentence for sentence in sentences if sentence]


def _single(comparison: Comparison) -> str:
    if not comparison.architectures:
        return "Nothing was measured."
    architecture = comparison.architectures[0]
    found = analysis.limit(architecture, comparison.settings)
    text = found.text() if found else "not measured"
    return f"Only {architecture.title} was measured: its limit is {text}."


def _limit_phrase(found: analysis.Limit | None) -> str:
    if found is None or found.window is None:
        return "no limit (no step under the bounds)"
    if not found.is_reached:
        return f"at least {found.rate:,.0f} req/s (limit not reached)"
    return f"{found.rate:,.0f} req/s"


def _equal_cpu(comparison: Comparison, monolith: Architecture, split: Architecture) -> str:
    settings, machine = comparison.settings, comparison.machine
    mono, cut = analysis.limit(monolith, settings), analysis.limit(split, settings)
    where = (
        f"On the same {machine.get('cpus', '?')} cores with {settings.worker_budget} server "
        f"workers each"
    )
    if settings.hop_latency_ms:
        where += f" and {settings.hop_latency_ms:g} ms added to every hop between processes"
    if not (mono and cut and mono.rate and cut.rate):
        return (
            f"{where}, {split.title} has {_limit_phrase(cut)} and {monolith.title} "
            f"{_limit_phrase(mono)}: no throughput ratio can be stated."
        )
    ratio = cut.rate / mono.rate
    if abs(ratio - 1) <= SAME:
        winner = "about the same throughput"
    elif ratio < 1:
        winner = "the monolith wins on throughput"
    else:
        winner = "the split wins on throughput"
    caveat = ""
    if not (mono.is_reached and cut.is_reached):
        caveat = " (a limit not reached is a lower bound, so the ratio is only indicative)"
    model = next(
        (found for found in analysis.predictions(comparison) if found.architecture == split.key),
        None,
    )
    if model is not None and model.is_flagged:
        caveat += (
            f"; CPU alone predicts {model.predicted:.2f}x (the prediction table), so something "
            "other than CPU, such as server workers or database locks, set these limits"
        )
    return (
        f"{where}, {split.title} serves {ratio:.2f}x the throughput of {monolith.title} "
        f"({_limit_phrase(cut)} against {_limit_phrase(mono)}): {winner}{caveat}."
    )


def _isolation_bought(comparison: Comparison, monolith: Architecture, split: Architecture) -> str:
    settings = comparison.settings
    mono = analysis.isolation(monolith, settings)
    cut = analysis.isolation(split, settings)
    if not (mono and cut and mono.ratio and cut.ratio):
        return ""
    if abs(cut.ratio - mono.ratio) <= SAME * mono.ratio:
        judged = "no better isolation"
    elif cut.ratio < mono.ratio:
        judged = "the split isolates the hot spot better"
    else:
        judged = "the split isolates it worse"
    return (
        f"Under a hot spot ({settings.hot_users} {settings.hot_name} with no think time on "
        f"{settings.hot_endpoint}) the other endpoints' p95 rose x{cut.ratio:.2f} in "
        f"{split.title} against x{mono.ratio:.2f} in {monolith.title}: {judged}."
    )


def _latency_bought(comparison: Comparison, monolith: Architecture, split: Architecture) -> str:
    mono, cut = monolith.reference, split.reference
    if not (mono and cut and mono.total.p95_ms and cut.total.p95_ms):
        return ""
    rate = comparison.settings.reference_rate
    ratio = cut.total.p95_ms / mono.total.p95_ms
    if abs(ratio - 1) <= SAME:
        judged = "about the same"
    else:
        judged = "faster in the split" if ratio < 1 else "slower in the split"
    return (
        f"At the reference load ({rate:g} req/s requested, {cut.total.requests_per_second:,.0f} "
        f"and {mono.total.requests_per_second:,.0f} served) p95 is {cut.total.p95_ms:,.0f} ms in "
        f"{split.title} against {mono.total.p95_ms:,.0f} ms in {monolith.title}: "
        f"x{ratio:.2f}, {judged}."
    )


def _where_cpu_goes(comparison: Comparison, monolith: Architecture, split: Architecture) -> str:
    settings = comparison.settings
    mono = analysis.limit_window(monolith, settings)
    cut = analysis.limit_window(split, settings)
    if not (mono and cut and mono.cpu_seconds_per_1000 and cut.cpu_seconds_per_1000):
        return ""
    by_role = cut.resources.cpu_seconds_by_role
    total = sum(by_role.values()) or 1.0
    not_app = (*OVERHEAD_ROLES, DATABASE_ROLE, EMULATOR_ROLE)
    app = sum(spent for role, spent in by_role.items() if role not in not_app)
    shares = [f"{app / total:.0%} in the application's processes"]
    if by_role.get(DATABASE_ROLE):
        shares.append(f"{by_role[DATABASE_ROLE] / total:.0%} in the database server")
    if by_role.get(EMULATOR_ROLE):
        shares.append(f"{by_role[EMULATOR_ROLE] / total:.0%} in the AWS emulator (moto, not AWS)")
    shares += [
        f"{by_role[role] / total:.0%} in the {role}" for role in OVERHEAD_ROLES if by_role.get(role)
    ]
    sentence = (
        f"At its limit {split.title} spends {cut.cpu_seconds_per_1000:.2f} CPU-s per 1,000 "
        f"requests against {mono.cpu_seconds_per_1000:.2f} for {monolith.title}, "
        f"{', '.join(shares)}"
    )
    idle_split, idle_mono = analysis.background(split), analysis.background(monolith)
    if idle_split and idle_mono:
        sentence += (
            f"; with no traffic its polling alone keeps {idle_split.cores:.2f} cores busy "
            f"against {idle_mono.cores:.2f}"
        )
    return sentence + "."


def _more_machines(comparison: Comparison, monolith: Architecture, split: Architecture) -> str:
    """From the split's limit: was the machine CPU-bound, and what would a machine per role
    give before its busiest role's processes saturate (against whole monolith copies)."""
    cpus = float(comparison.machine.get("cpus") or 0)
    window = analysis.limit_window(split, comparison.settings)
    mono = analysis.limit(monolith, comparison.settings)
    if window is None or not cpus:
        return ""
    cost = analysis.cost(window)
    busy = cost.cores + cost.generator_cores
    if not cost.cores_by_role:
        return ""
    copies = (
        f"; the monolith grows only by whole copies (about {mono.rate:,.0f} req/s each, "
        "all sharing one database)"
        if mono and mono.rate
        else ""
    )
    if busy < CPU_BOUND_SHARE * cpus:
        shared = _shared(comparison, cpus)
        if shared:
            return (
                f"More machines: at the split's limit system and load generator used only "
                f"{busy:.2f} of {cpus:g} cores, but other work shared the machine ({shared}), so "
                f"that may be all the CPU they got: rerun on a quiet machine before reading "
                f"scaling from it{copies}."
            )
        return (
            f"More machines: at the split's limit system and load generator used {busy:.2f} of "
            f"{cpus:g} cores, so the machine was not CPU-bound and more machines alone would "
            f"not raise that limit (something other than CPU set it: server workers, locks, time "
            f"per hop){copies}."
        )
    role, cores = max(cost.cores_by_role.items(), key=lambda item: item[1])
    capacity = analysis.role_capacity(split, role)
    factor = min(float(capacity or cpus), cpus) / cores if cores else 1.0
    rate = window.total.requests_per_second
    saturates = (
        f"the database server uses all {cpus:g} cores of its machine"
        if capacity is None
        else f"{role}'s {capacity} process(es) saturate"
    )
    return (
        f"More machines: at the split's limit its busiest role, {role}, used {cores:.2f} of the "
        f"{cost.cores:.2f} cores the system used, so with a machine per role (and the generator "
        f"on another) {rate:,.0f} req/s could grow about x{factor:.1f} before {saturates}, if "
        f"the work scales linearly{copies}."
    )


def _shared(comparison: Comparison, cpus: float) -> str:
    """'load average 13.8 at the start' when other work kept the machine busy, else ''."""
    averages = comparison.machine.get("load_average") or []
    if averages and float(averages[0]) > SHARED_LOAD * cpus:
        return f"load average {float(averages[0]):.1f} at the start"
    return ""


def details(comparison: Comparison) -> list[str]:
    """What follows the verdict: every architecture's limit, rankings, overhead, warnings."""
    sentences = [
        _limits(comparison),
        _reference_latency(comparison),
        _cpu(comparison),
        _isolation(comparison),
        *_overhead(comparison),
        *_generator(comparison),
    ]
    return [sentence for sentence in sentences if sentence]


def _ranking(comparison: Comparison, figure: str) -> list[Ranked]:
    """Architectures with the figure measured, best first (lowest, except for the limit)."""
    ranked = []
    for architecture in comparison.architectures:
        value = _figure(architecture, comparison, figure)
        if value is not None:
            ranked.append(Ranked(architecture, value))
    return sorted(ranked, key=lambda found: -found.value if figure == "limit" else found.value)


def _figure(architecture: Architecture, comparison: Comparison, figure: str) -> float | None:
    settings = comparison.settings
    if figure == "limit":
        window = analysis.limit_window(architecture, settings)
        return window.total.requests_per_second if window else None
    if figure == "cpu":
        window = analysis.limit_window(architecture, settings)
        return window.cpu_seconds_per_1000 if window else None
    if figure == "p95":
        window = analysis.reference(architecture, settings)
        return window.total.p95_ms if window else None
    found = analysis.isolation(architecture, settings)
    return found.ratio if found else None


def _others(ranked: list[Ranked], unit: str, digits: int = 0) -> str:
    return "; ".join(
        f"{found.architecture.title} {found.value:,.{digits}f}{unit}" for found in ranked
    )


def _limits(comparison: Comparison) -> str:
    settings = comparison.settings
    bound = f"p95 <= {settings.p95_bound_ms:g} ms and errors <= {settings.error_bound:.1%}"
    parts = []
    for architecture in comparison.architectures:
        found = analysis.limit(architecture, settings)
        window = found.window if found else None
        text = found.text() if found else "not measured"
        users = f" ({window.users} users)" if window is not None else ""
        parts.append(f"{architecture.title} {text}{users}")
    return f"Limits with {bound}, no think time: " + "; ".join(parts) + "."


def _reference_latency(comparison: Comparison) -> str:
    rate = comparison.settings.reference_rate
    return _leader(f"Lowest p95 at {rate:g} req/s", _ranking(comparison, "p95"), " ms", 0)


def _cpu(comparison: Comparison) -> str:
    label = "Lowest CPU per 1,000 requests at the limit"
    return _leader(label, _ranking(comparison, "cpu"), " s", 2)


def _leader(label: str, ranked: list[Ranked], unit: str, digits: int) -> str:
    """'LABEL: best, value (then the others, in order).' or '' when nothing was ranked."""
    if not ranked:
        return ""
    best = ranked[0]
    then = f" (then {_others(ranked[1:], unit, digits)})." if len(ranked) > 1 else "."
    return f"{label}: {best.architecture.title}, {best.value:,.{digits}f}{unit}{then}"


def _isolation(comparison: Comparison) -> str:
    ranked = _ranking(comparison, "isolation")
    if not ranked:
        return ""
    settings, best = comparison.settings, ranked[0]
    found = analysis.isolation(best.architecture, settings)
    assert found is not None and found.others_reference_p95_ms is not None
    return (
        f"Best isolation: {best.architecture.title}; when {settings.hot_users} {settings.hot_name} "
        f"loaded {settings.hot_endpoint}, the other endpoints' p95 went from "
        f"{found.others_reference_p95_ms:,.0f} to {found.others_hot_p95_ms or 0:,.0f} ms "
        f"(x{best.value:.2f})" + (f" (others: {_ratios(ranked[1:])})." if len(ranked) > 1 else ".")
    )


def _ratios(ranked: list[Ranked]) -> str:
    return "; ".join(f"{found.architecture.title} x{found.value:.2f}" for found in ranked)


def _overhead(comparison: Comparison) -> list[str]:
    """The share of CPU the proxy and the events/sync processes took at the reference load."""
    parts = []
    for architecture in comparison.architectures:
        window = analysis.reference(architecture, comparison.settings)
        if window is None or not window.resources.cpu_seconds:
            continue
        by_role = window.resources.cpu_seconds_by_role
        shares = [
            f"{role} {by_role[role] / window.resources.cpu_seconds:.0%}"
            for role in OVERHEAD_ROLES
            if by_role.get(role)
        ]
        if shares:
            parts.append(f"{architecture.title}: {', '.join(shares)}")
    if not parts:
        return []
    rate = comparison.settings.reference_rate
    return [
        f"CPU the monolith alone does not spend, as shares of each architecture's CPU at "
        f"{rate:g} req/s: " + "; ".join(parts) + "."
    ]


def _generator(comparison: Comparison) -> list[str]:
    """A saturated generator must never read as a slow system: say where to doubt the figures."""
    warnings = analysis.generator_warnings(comparison)
    return [
        f"Read the figures of {architecture.title} with care: in {len(warnings[architecture.key])} "
        f"of its {len(architecture.windows)} windows the load generator itself was near "
        "saturation (see the generator warnings)."
        for architecture in comparison.architectures
        if architecture.key in warnings
    ]
