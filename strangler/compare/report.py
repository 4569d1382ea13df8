"""Writing a load comparison's report: `report.json`, `summary.md`, `report.html` and the plots.

`write_report` renders one `Comparison` into a folder: the raw JSON (which `strangler report`
can render again), a Markdown summary to paste into a discussion, and a self-contained HTML
page (interactive charts drawn by uPlot, inlined with its licence, over the figures as JSON;
the PNG plots embedded as base64 for readers without scripts: it opens with no network).
Both start with the verdict (at most five sentences), then the summary table, the details, and
the CPU-additive prediction beside the measure with published ratios as context. The tables
come from `strangler.compare.report_tables`, the plots from `strangler.compare.report_plots`,
the sentences from `strangler.compare.verdict`. This module must never measure or compute a
figure of its own.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from strangler.compare import analysis, report_charts, report_plots, report_tables
from strangler.compare.report_tables import Table
from strangler.compare.results import Comparison
from strangler.compare.verdict import details, verdict

TEMPLATE = "report_template.html"


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    json: Path
    summary: Path
    html: Path
    plots: dict[str, Path]


def write_report(comparison: Comparison, folder: Path) -> ReportFiles:
    """Write every part of the report into `folder` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        json=folder / "report.json",
        summary=folder / "summary.md",
        html=folder / "report.html",
        plots=report_plots.draw_all(comparison, folder / "plots"),
    )
    comparison.save(files.json)
    files.summary.write_text(summary_markdown(comparison), encoding="utf-8")
    artefacts = sorted(str(path.relative_to(folder)) for path in (folder / "locust").glob("*.html"))
    files.html.write_text(html(comparison, files.plots, artefacts), encoding="utf-8")
    return files


def settings_lines(comparison: Comparison) -> list[tuple[str, str]]:
    """How the run was made, as (label, value) pairs, the same in every form of the report."""
    settings = comparison.settings
    return [
        ("profile", settings.profile),
        (
            "limit search",
            f"users with no think time, from {settings.start_users}, more each step (at most "
            f"{settings.max_users} users, {settings.search_seconds:g} s), until a step breaks "
            f"p95 <= {settings.p95_bound_ms:g} ms or errors <= {settings.error_bound:.1%}; "
            "the last step under both is the limit",
        ),
        ("settle / window", f"{settings.settle_seconds:g} s / {settings.window_seconds:g} s"),
        ("background window", f"{settings.idle_seconds:g} s with no traffic, once started"),
        (
            "reference load",
            f"{settings.reference_rate:g} req/s (requested) from {settings.reference_users} "
            "paced users",
        ),
        (
            "isolation experiment",
            f"{settings.hot_users} {settings.hot_name} (no think time) on "
            f"{settings.hot_endpoint} beside the reference load",
        ),
        (
            "hop latency",
            f"{settings.hop_latency_ms:g} ms added to every hop between processes (netem on "
            "the loopback of the network namespace every process ran in)"
            if settings.hop_latency_ms
            else "none added (every process on one host's loopback)",
        ),
        ("tracing", "off in every measured process (OTEL_SDK_DISABLED=true)"),
        ("worker budget", f"{settings.worker_budget} server workers in every architecture"),
        ("generator processes", str(settings.generator_processes)),
        ("seed scale", f"{settings.scale:g}"),
        ("mix", _mix(settings.mix)),
        ("machine", ", ".join(f"{key} {value}" for key, value in comparison.machine.items())),
        ("started", _when(comparison.started_at)),
        ("run duration", _duration(comparison.seconds)),
    ]


def _mix(mix: dict[str, Any]) -> str:
    """'reader 55 (think 0.2-0.8 s: list_posts 5, get_thread 3, ...); ...' from the scenario."""
    kinds = []
    for name, kind in mix.items():
        if not isinstance(kind, dict):
            continue
        low, high = kind["think_seconds"]
        tasks = ", ".join(f"{task} {weight}" for task, weight in kind["tasks"].items())
        kinds.append(f"{name} {kind['weight']} (think {low:g}-{high:g} s: {tasks})")
    return "; ".join(kinds) or json.dumps(mix, sort_keys=True)


def summary_markdown(comparison: Comparison) -> str:
    """The Markdown summary: the summary table first, then verdict, isolation and settings."""
    lines = [f"## Load comparison ({comparison.settings.profile})", ""]
    lines += ["### Verdict", ""]
    lines += [f"- {sentence}" for sentence in verdict(comparison)]
    lines += [""]
    lines += _markdown_table(report_tables.summary(comparison))
    lines += ["", "### Details", ""]
    lines += [f"- {sentence}" for sentence in details(comparison)]
    found = report_tables.prediction(comparison)
    lines += ["", f"### {found.title}", ""]
    lines += _markdown_table(found)
    lines += ["", "Published ratios, as context (other systems, other machines):", ""]
    lines += [f"- {source}: {said}" for source, said in analysis.PUBLISHED]
    warnings = generator_warnings(comparison)
    if warnings:
        lines += ["", "### Load generator warnings", ""]
        lines += [f"- {title}: {line}" for title, found in warnings.items() for line in found]
    lines += ["", f"### {report_tables.isolation(comparison).title}", ""]
    lines += _markdown_table(report_tables.isolation(comparison))
    lines += ["", "### Settings", ""]
    lines += [f"- **{label}**: {value}" for label, value in settings_lines(comparison)]
    lines += ["", f"### {report_tables.workers(comparison).title}", ""]
    lines += _markdown_table(report_tables.workers(comparison))
    return "\n".join(lines) + "\n"


def generator_warnings(comparison: Comparison) -> dict[str, list[str]]:
    """The generator warnings by architecture title, as every table names architectures."""
    titles = {architecture.key: architecture.title for architecture in comparison.architectures}
    return {titles[key]: found for key, found in analysis.generator_warnings(comparison).items()}


def _markdown_table(table: Table) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [row(table.headers), row(["---"] * len(table.headers)), *map(row, table.rows)]


def html(
    comparison: Comparison, plots: dict[str, Path], locust_artefacts: list[str] | None = None
) -> str:
    """The self-contained HTML page; `locust_artefacts` are relative links to locust's own
    reports beside it (they are not needed to read this page)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("strangler.compare", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template(TEMPLATE).render(
        profile=comparison.settings.profile,
        settings=settings_lines(comparison),
        verdict=verdict(comparison),
        details=details(comparison),
        prediction=report_tables.prediction(comparison),
        published=analysis.PUBLISHED,
        locust=locust_artefacts,
        warnings=generator_warnings(comparison),
        summary=report_tables.summary(comparison),
        workers=report_tables.workers(comparison),
        architectures=[
            (
                report_tables.steps(comparison, architecture),
                report_tables.cpu_by_role(comparison, architecture),
                architecture.problems,
            )
            for architecture in comparison.architectures
        ],
        endpoints=report_tables.endpoints(comparison),
        isolation=report_tables.isolation(comparison),
        isolation_by_endpoint=report_tables.isolation_by_endpoint(comparison),
        plots=[(key, report_plots.PLOTS[key], _data_uri(path)) for key, path in plots.items()],
        chart_data=Markup(report_charts.script_json(report_charts.chart_data(comparison))),
        **{name: Markup(text) for name, text in report_charts.assets().items()},
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _when(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
