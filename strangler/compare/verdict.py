"""The verdict of a load comparison: plain sentences computed from `strangler.compare.analysis`
figures.

Which architecture has the highest knee, the lowest p95 at the reference load, the lowest CPU
per 1,000 requests and the best isolation; why, in cores and CPU shares by role; and how the
result would move with more machines. Every number a sentence states is one the report shows
(or the ratio of two it shows). This module must never hard-code which architecture wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from strangler.compare import analysis
from strangler.compare.results import Architecture, Comparison

OVERHEAD_ROLES = ("proxy", "events", "sync")  # CPU the monolith alone does not spend
CPU_BOUND_SHARE = 0.8  # the machine counts as CPU-bound past this share of its cores


@dataclass(frozen=True)
class Ranked:
    """One architecture's figure in a ranking."""

    architecture: Architecture
    value: float


def verdict(comparison: Comparison) -> list[str]:
    """The report's conclusions, one sentence (or two) per line."""
    sentences = [
        _knees(comparison),
        _reference_latency(comparison),
        _cpu(comparison),
        _isolation(comparison),
        *_overhead(comparison),
        *_scaling(comparison),
        *_generator(comparison),
    ]
    return [sentence for sentence in sentences if sentence]


def _ranking(comparison: Comparison, figure: str) -> list[Ranked]:
    """Architectures with the figure measured, best first (lowest, except for the knee)."""
    ranked = []
    for architecture in comparison.architectures:
        value = _figure(architecture, comparison, figure)
        if value is not None:
            ranked.append(Ranked(architecture, value))
    return sorted(ranked, key=lambda found: -found.value if figure == "knee" else found.value)


def _figure(architecture: Architecture, comparison: Comparison, figure: str) -> float | None:
    settings = comparison.settings
    if figure == "knee":
        window = analysis.knee(architecture, settings)
        return window.total.requests_per_second if window else None
    if figure == "cpu":
        window = analysis.knee(architecture, settings)
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


def _knees(comparison: Comparison) -> str:
    settings, ranked = comparison.settings, _ranking(comparison, "knee")
    bound = f"p95 <= {settings.p95_bound_ms:g} ms and errors <= {settings.error_bound:.1%}"
    if not ranked:
        return f"No architecture held {bound} at any step: none has a knee."
    best = ranked[0]
    window = analysis.knee(best.architecture, settings)
    assert window is not None
    missing = [
        found.title
        for found in comparison.architectures
        if found.key not in {ranked_one.architecture.key for ranked_one in ranked}
    ]
    sentence = (
        f"Highest knee: {best.architecture.title}, {best.value:,.0f} req/s at {window.users} "
        f"users with {bound}"
        + (f" (then {_others(ranked[1:], ' req/s')})." if len(ranked) > 1 else ".")
    )
    if missing:
        sentence += f" No step of {', '.join(missing)} stayed under the bounds."
    return sentence


def _reference_latency(comparison: Comparison) -> str:
    users = comparison.settings.reference_users
    return _leader(f"Lowest p95 at {users} users", _ranking(comparison, "p95"), " ms", 0)


def _cpu(comparison: Comparison) -> str:
    label = "Lowest CPU per 1,000 requests at the knee"
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
        f"Best isolation: {best.architecture.title}; when {settings.hot_users} hot searchers "
        f"loaded {settings.hot_endpoint}, the other endpoints' p95 went from "
        f"{found.others_reference_p95_ms:,.0f} to {found.others_hot_p95_ms or 0:,.0f} ms "
        f"(x{best.value:.2f})" + (f" (others: {_ratios(ranked[1:])})." if len(ranked) > 1 else ".")
    )


def _ratios(ranked: list[Ranked]) -> str:
    return "; ".join(f"{found.architecture.title} x{found.value:.2f}" for found in ranked)


def _overhead(comparison: Comparison) -> list[str]:
    """Why: the share of CPU the proxy and the events/sync processes took at the reference load."""
    sentences = []
    for architecture in comparison.architectures:
        window = analysis.reference(architecture, comparison.settings)
        if window is None or not window.resources.cpu_seconds:
            continue
        by_role = window.resources.cpu_seconds_by_role
        shares = {
            role: by_role[role] / window.resources.cpu_seconds
            for role in OVERHEAD_ROLES
            if by_role.get(role)
        }
        if shares:
            listed = ", ".join(f"the {role} took {share:.0%}" for role, share in shares.items())
            sentences.append(
                f"Why {architecture.title} costs what it does: at {window.users} users "
                f"{listed} of its CPU, work the monolith alone does not do."
            )
    return sentences


def _scaling(comparison: Comparison) -> list[str]:
    """At each knee: how busy the machine and the busiest role were, and what more machines do."""
    cpus = float(comparison.machine.get("cpus") or 0)
    sentences = []
    for architecture in comparison.architectures:
        window = analysis.knee(architecture, comparison.settings)
        if window is None or not cpus:
            continue
        sentences.append(_scaling_of(architecture, analysis.cost(window), cpus))
    return sentences


def _scaling_of(architecture: Architecture, cost: analysis.Cost, cpus: float) -> str:
    if not cost.cores_by_role:
        return f"{architecture.title}: no CPU by role was recorded at its knee."
    role, cores = max(cost.cores_by_role.items(), key=lambda item: item[1])
    rate = cost.window.total.requests_per_second
    sentence = (
        f"At the knee of {architecture.title} ({rate:,.0f} req/s) the system used "
        f"{cost.cores:.2f} of {cpus:g} cores and the generator {cost.generator_cores:.2f}; "
        f"the busiest role, {role}, used {cores:.2f} cores with "
        f"{analysis.role_capacity(architecture, role)} process(es)."
    )
    if set(cost.cores_by_role) <= {"monolith"}:
        sentence += (
            " The monolith scales only by whole copies: one more machine runs a second copy, "
            f"at most about {2 * rate:,.0f} req/s, and only with a database both copies share."
        )
    return sentence + _more_machines(architecture, cpus)


def _more_machines(architecture: Architecture, cpus: float) -> str:
    """From the busiest step: was the machine CPU-bound, and what would a second one relieve."""
    heaviest = max(
        (analysis.cost(window) for window in architecture.steps),
        key=lambda found: found.cores + found.generator_cores,
    )
    busy = heaviest.cores + heaviest.generator_cores
    sentence = (
        f" At its busiest step ({heaviest.window.users} users) system and generator used "
        f"{busy:.2f} of {cpus:g} cores"
    )
    if not heaviest.cores_by_role:
        return sentence + ", with no CPU by role recorded."
    if busy < CPU_BOUND_SHARE * cpus:
        return sentence + (
            ": the machine was not CPU-bound, so more machines alone would not move the "
            "knee; the limit is elsewhere (workers, database locks, time spent per hop)."
        )
    role, cores = max(heaviest.cores_by_role.items(), key=lambda item: item[1])
    capacity = analysis.role_capacity(architecture, role)
    if cores >= heaviest.cores:  # one role did all the work: nothing to move elsewhere
        return sentence + f", {cores:.2f} of them in {role}: the machine was the limit."
    usable, rest = min(float(capacity), cpus), heaviest.cores - cores
    factor = min(usable / cores, cpus / rest)
    rate = heaviest.window.total.requests_per_second
    limit = f"{role}'s {capacity} process(es)" if usable / cores < cpus / rest else "the rest"
    return sentence + (
        f", {cores:.2f} of them in {role}, the bottleneck role. With one more machine, {role} "
        f"alone on one ({usable:g} usable cores) and the other roles on the other ({cpus:g} "
        f"cores for the {rest:.2f} they used), {rate:,.0f} req/s could grow about "
        f"x{factor:.1f} before {limit} saturate, if the work scales linearly and the "
        "generator moves to a third machine."
    )


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
