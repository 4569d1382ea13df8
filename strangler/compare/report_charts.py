"""The interactive charts of a load comparison's page: the data they draw, and the page's scripts.

`chart_data` turns a `Comparison` into the plain JSON the page's own script
(`report_charts.js`) draws with uPlot (vendored in `strangler.compare.vendor`, inlined into the
page with its licence notice, so the page opens with no network): the limit search (throughput
and p95 of every step, the limit, a limit not reached and the step that broke a bound marked),
CPU by role (at the limit, at the reference rate, with no traffic), p95 per endpoint at the
reference load (a bar of fewer than `analysis.MIN_SAMPLES` requests greyed, with that reason)
and the isolation experiment. Every point and bar carries its request count; every architecture
has the colour `report_plots.colours` gives it, in every chart and every PNG. This module must
never compute a figure `strangler.compare.analysis` does not give.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from strangler.compare import analysis, report_plots
from strangler.compare.results import Comparison

VENDOR = "strangler.compare.vendor"


def assets() -> dict[str, str]:
    """uPlot's script, its style and licence, and ours: what the page inlines."""
    vendor = resources.files(VENDOR)
    licence = vendor.joinpath("uPlot-LICENSE.txt").read_text(encoding="utf-8")
    return {
        "uplot_js": vendor.joinpath("uPlot.iife.min.js").read_text(encoding="utf-8"),
        "uplot_css": vendor.joinpath("uPlot.min.css").read_text(encoding="utf-8"),
        "uplot_licence": licence.replace("*/", "* /"),
        "charts_js": resources.files("strangler.compare")
        .joinpath("report_charts.js")
        .read_text(encoding="utf-8"),
    }


def script_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element (no '</' can close it early)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def chart_data(comparison: Comparison) -> dict[str, Any]:
    """Everything the page's charts draw, each point with its request count."""
    palette = report_plots.colours(comparison)
    return {
        "minSamples": analysis.MIN_SAMPLES,
        "few": report_plots.FEW,
        "architectures": [
            {"key": found.key, "title": found.title, "colour": palette[found.key]}
            for found in comparison.architectures
        ],
        "search": _search(comparison),
        "cpu": _cpu(comparison),
        "endpoints": _endpoints(comparison),
        "isolation": _isolation(comparison),
    }


def _search(comparison: Comparison) -> dict[str, Any]:
    """Every step of every search on one axis of users (null where a search had no such step)."""
    settings = comparison.settings
    users = sorted({window.users for found in comparison.architectures for window in found.search})
    series = []
    for architecture in comparison.architectures:
        steps = {window.users: window for window in architecture.search}
        if not steps:
            continue
        found = analysis.limit(architecture, settings)
        at = [steps.get(count) for count in users]
        series.append(
            {
                "key": architecture.key,
                "rate": [w.total.requests_per_second if w else None for w in at],
                "p95": [w.total.p95_ms if w else None for w in at],
                "requests": [w.total.requests if w else None for w in at],
                "errors": [w.total.error_rate if w else None for w in at],
                "limit": found.window.users if found and found.window else None,
                "reached": bool(found and found.is_reached),
                "broken": found.broken.users if found and found.broken else None,
            }
        )
    return {"users": users, "bound": settings.p95_bound_ms, "series": series}


def _cpu(comparison: Comparison) -> list[dict[str, Any]]:
    """The three panels of CPU by role, each a stack of roles per architecture."""
    role_colour = report_plots.role_colours(comparison)
    charts = []
    for panel in report_plots.cpu_panels(comparison):
        roles = [
            {
                "role": role,
                "colour": colour,
                "values": [stack.get(role, 0.0) for stack in panel.stacks],
            }
            for role, colour in role_colour.items()
            if any(stack.get(role) for stack in panel.stacks)
        ]
        unit = "CPU s / 1,000 requests" if panel.unit == "per_1000" else "cores"
        charts.append(
            {"title": panel.title, "unit": unit, "keys": panel.keys, "requests": panel.requests,
             "roles": roles}
        )  # fmt: skip
    return charts


def _endpoints(comparison: Comparison) -> dict[str, Any]:
    table = analysis.at_reference(comparison)
    names = list(table)
    keys = [
        found.key
        for found in comparison.architectures
        if any(found.key in row for row in table.values())
    ]
    series = []
    for key in keys:
        entries = [table[name].get(key) for name in names]
        series.append(
            {
                "key": key,
                "p95": [entry.p95_ms if entry else None for entry in entries],
                "requests": [entry.requests if entry else 0 for entry in entries],
            }
        )
    return {"names": names, "rate": comparison.settings.reference_rate, "series": series}


def _isolation(comparison: Comparison) -> dict[str, Any]:
    settings = comparison.settings
    rows = []
    for architecture in comparison.architectures:
        found = analysis.isolation(architecture, settings)
        if found is None:
            continue
        before, after = report_plots.others_counts(architecture, comparison)
        rows.append(
            {
                "key": architecture.key,
                "before": found.others_reference_p95_ms,
                "after": found.others_hot_p95_ms,
                "beforeRequests": before,
                "afterRequests": after,
                "ratio": found.ratio,
            }
        )
    return {
        "rate": settings.reference_rate,
        "hotUsers": settings.hot_users,
        "hotName": settings.hot_name,
        "rows": rows,
    }
