"""The tables of a load comparison's report, as headers and rows of text.

The Markdown summary and the HTML page show the same tables, so both are built here once:
the summary (one row per architecture), the windows of each architecture (background, search
steps, reference, hot), CPU by role, the CPU-additive prediction beside the measured ratio, the
endpoints at the reference load, the isolation experiment and the worker budget. This module
must never compute a figure `strangler.compare.analysis` does not give, nor know HTML or
Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass

from strangler.compare import analysis
from strangler.compare.results import Architecture, Comparison, Endpoint

SUMMARY_HEADERS = [
    "architecture",
    "limit (req/s)",
    "users at limit",
    "p95 at limit (ms)",
    "CPU s / 1,000 req at limit",
]
BACKGROUND_HEADER = "background CPU (cores, no traffic)"
MISSING = "-"


@dataclass(frozen=True)
class Table:
    """A titled table of text cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def number(value: float | None, digits: int = 0) -> str:
    """A figure as text, thousands grouped; a missing one as a dash."""
    return MISSING if value is None else f"{value:,.{digits}f}"


def limit_cell(found: analysis.Limit | None) -> str:
    """The limit as a table shows it: '412', 'not reached at 412', or 'none'."""
    if found is None:
        return MISSING
    if found.rate is None:
        return "none"
    rate = number(found.rate)
    return rate if found.is_reached else f"not reached at {rate}"


def summary(comparison: Comparison) -> Table:
    """One row per architecture: the limit and its cost, the cost at the reference rate, the
    background CPU, memory, the reference p95, isolation."""
    settings = comparison.settings
    rate = f"{settings.reference_rate:g} req/s (reference)"
    headers = [
        *SUMMARY_HEADERS,
        f"CPU s / 1,000 req at {rate}",
        BACKGROUND_HEADER,
        "peak memory (MiB)",
        f"p95 at {rate} (ms)",
        "isolation: others' p95 x",
    ]
    rows = []
    for architecture in comparison.architectures:
        found = analysis.limit(architecture, settings)
        window = found.window if found else None
        base = analysis.reference(architecture, settings)
        idle = analysis.background(architecture)
        isolation = analysis.isolation(architecture, settings)
        rows.append(
            [
                architecture.title,
                limit_cell(found),
                str(window.users) if window else MISSING,
                number(window.total.p95_ms if window else None),
                number(window.cpu_seconds_per_1000 if window else None, 2),
                number(base.cpu_seconds_per_1000 if base else None, 2),
                number(idle.cores if idle else None, 2),
                number(analysis.peak_memory(architecture)),
                number(base.total.p95_ms if base else None),
                number(isolation.ratio if isolation else None, 2),
            ]
        )
    return Table("Summary", headers, rows)


def steps(comparison: Comparison, architecture: Architecture) -> Table:
    """Every window of one architecture: load, latency, errors and what it cost."""
    found = analysis.limit(architecture, comparison.settings)
    headers = [
        "phase", "users", "req/s", "requests", "p50 (ms)", "p95 (ms)", "p99 (ms)", "errors",
        "CPU s / 1,000 req", "cores", "peak MiB", "generator CPU s", "busiest locust core",
    ]  # fmt: skip
    rows = []
    for window in architecture.windows:
        total = window.total
        phase = window.phase
        if found is not None and window is found.window:
            phase += " (the limit)" if found.is_reached else " (best; limit not reached)"
        elif found is not None and window is found.broken:
            phase += " (broke a bound)"
        users = str(window.users) + (f" + {window.hot_users} hot" if window.hot_users else "")
        rows.append(
            [
                phase, users, number(total.requests_per_second, 1), number(total.requests),
                number(total.p50_ms), number(total.p95_ms), number(total.p99_ms),
                f"{total.failures:,} ({total.error_rate:.1%})",
                number(window.cpu_seconds_per_1000, 2),
                number(analysis.cost(window).cores, 2),
                number(window.resources.peak_memory_mib),
                number(window.resources.generator_cpu_seconds, 1),
                f"{window.resources.generator_busiest_core:.0%}",
            ]
        )  # fmt: skip
    return Table(architecture.title, headers, rows)


def cpu_by_role(comparison: Comparison, architecture: Architecture) -> Table | None:
    """By role: CPU s / 1,000 requests at the limit and at the reference rate, and the cores
    each role keeps busy with no traffic; None when nothing was measured."""
    settings = comparison.settings
    at_limit = analysis.limit_window(architecture, settings)
    base = analysis.reference(architecture, settings)
    idle = analysis.background(architecture)
    if at_limit is None and base is None and idle is None:
        return None
    limit_cost = analysis.cost(at_limit) if at_limit else None
    base_cost = analysis.cost(base) if base else None
    roles = sorted(
        {role for cost in (limit_cost, base_cost, idle) if cost for role in cost.cores_by_role}
    )
    rows = [
        [
            role,
            number(limit_cost.cpu_per_1000_by_role.get(role) if limit_cost else None, 2),
            number(limit_cost.cores_by_role.get(role) if limit_cost else None, 2),
            number(base_cost.cpu_per_1000_by_role.get(role) if base_cost else None, 2),
            number(idle.cores_by_role.get(role) if idle else None, 3),
            _capacity(analysis.role_capacity(architecture, role)),
        ]
        for role in roles
    ]
    users = f"{at_limit.users} users" if at_limit else "none"
    headers = [
        "role", f"CPU s / 1,000 req at the limit ({users})", "cores at the limit",
        f"CPU s / 1,000 req at {settings.reference_rate:g} req/s (reference)",
        BACKGROUND_HEADER, "processes",
    ]  # fmt: skip
    return Table(f"{architecture.title}: CPU by role", headers, rows)


def _capacity(processes: int | None) -> str:
    return "one per connection" if processes is None else str(processes)


def prediction(comparison: Comparison) -> Table:
    """The CPU-additive prediction beside the measured throughput ratio, per architecture."""
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    headers = [
        "architecture", "C_app (CPU ms/req)", "C_proxy", "C_hops",
        "predicted C_app / (C_app + C_proxy + C_hops)", "measured limit ratio", "agreement",
    ]  # fmt: skip
    rows = [
        [
            titles[found.architecture], number(found.app_ms, 2), number(found.proxy_ms, 2),
            number(found.hops_ms, 2), f"{found.predicted:.2f}x", number(found.measured, 2) + "x",
            f"far apart (over {analysis.DISAGREEMENT:.0%})" if found.is_flagged else "close",
        ]
        for found in analysis.predictions(comparison)
    ]  # fmt: skip
    return Table("The CPU-additive prediction against the measure", headers, rows)


def endpoints(comparison: Comparison) -> list[Table]:
    """One table per endpoint: every architecture's figures at the reference load."""
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    headers = ["architecture", "requests", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "errors"]
    tables = []
    for name, by_architecture in analysis.at_reference(comparison).items():
        rows = [_endpoint_row(titles[key], found) for key, found in by_architecture.items()]
        tables.append(Table(name, headers, rows))
    return tables


def _endpoint_row(title: str, found: Endpoint) -> list[str]:
    return [
        title, number(found.requests), number(found.requests_per_second, 1),
        number(found.p50_ms), number(found.p95_ms), number(found.p99_ms),
        f"{found.failures:,} ({found.error_rate:.1%})",
    ]  # fmt: skip


def isolation(comparison: Comparison) -> Table:
    """Per architecture: others' p95 without and with the hot load, the ratio, the hot p95."""
    settings = comparison.settings
    headers = [
        "architecture",
        f"others' p95 at {settings.reference_users} users (ms)",
        f"others' p95 + {settings.hot_users} hot (ms)",
        "x",
        f"{settings.hot_endpoint} p95 (ms)",
        f"{settings.hot_endpoint} p95 hot (ms)",
    ]
    rows = []
    for architecture in comparison.architectures:
        found = analysis.isolation(architecture, settings)
        if found is None:
            rows.append([architecture.title, *[MISSING] * (len(headers) - 1)])
            continue
        rows.append(
            [
                architecture.title,
                number(found.others_reference_p95_ms),
                number(found.others_hot_p95_ms),
                number(found.ratio, 2),
                number(found.hot_endpoint_reference_p95_ms),
                number(found.hot_endpoint_hot_p95_ms),
            ]
        )
    return Table("Isolation experiment", headers, rows)


def isolation_by_endpoint(comparison: Comparison) -> Table:
    """Each other endpoint's p95 without -> with the hot load, one column per architecture."""
    found = [
        (architecture.title, result)
        for architecture in comparison.architectures
        if (result := analysis.isolation(architecture, comparison.settings))
    ]
    names = sorted({name for _, result in found for name in result.per_endpoint})
    rows = []
    for name in names:
        cells = []
        for _, result in found:
            before, after = result.per_endpoint.get(name, (None, None))
            cells.append(f"{number(before)} -> {number(after)}")
        rows.append([name, *cells])
    headers = ["endpoint", *[f"{title} p95 (ms)" for title, _ in found]]
    return Table("Isolation by endpoint", headers, rows)


def workers(comparison: Comparison) -> Table:
    """How each architecture split the worker budget, and its processes."""
    rows = [
        [
            architecture.title,
            str(sum(architecture.workers.values())),
            ", ".join(f"{name} {count}" for name, count in architecture.workers.items()),
            str(len(architecture.processes)),
        ]
        for architecture in comparison.architectures
    ]
    headers = ["architecture", "server workers", "split", "processes"]
    return Table(f"Worker budget: {comparison.settings.worker_budget}", headers, rows)
