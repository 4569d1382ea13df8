"""The written report: complete, consistent, self-contained, and robust to missing windows."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from strangler.compare import analysis
from strangler.compare.report import ReportFiles, html, summary_markdown, write_report
from strangler.compare.report_tables import SUMMARY_HEADERS
from strangler.compare.results import AGGREGATED, Comparison
from tests.loadtests.figures import comparison


def first_table(markdown: str) -> list[list[str]]:
    """The summary table (the first table, after the verdict)."""
    lines = markdown.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_summary_opens_with_one_row_per_architecture(
    written: ReportFiles, measured: Comparison
) -> None:
    header, rule, *rows = first_table(written.summary.read_text())
    assert header[: len(SUMMARY_HEADERS)] == SUMMARY_HEADERS
    assert set(rule) == {"---"}
    assert [row[0] for row in rows] == [found.title for found in measured.architectures]


def test_the_summary_states_the_verdict_the_isolation_and_the_worker_budget(
    written: ReportFiles,
) -> None:
    text = written.summary.read_text()
    for heading in ("### Verdict", "### Isolation experiment", "### Settings", "Worker budget: 4"):
        assert heading in text
    assert text.index("### Verdict") < text.index("| architecture |")
    assert "**run duration**: 6 min 40 s" in text


def test_the_summary_figures_are_the_limits(written: ReportFiles, measured: Comparison) -> None:
    _, _, *rows = first_table(written.summary.read_text())
    for row, architecture in zip(rows, measured.architectures, strict=True):
        found = analysis.limit(architecture, measured.settings)
        assert found is not None and found.window is not None and found.is_reached
        assert row[1] == f"{found.window.total.requests_per_second:,.0f}"
        assert row[2] == str(found.window.users)


def test_a_limit_not_reached_is_said_so_in_the_table(tmp_path: Path) -> None:
    measured = comparison(split_capacity=600.0, split_slowdown=0.7)
    _, _, *rows = first_table(summary_markdown(measured))
    found = analysis.limit(measured.architectures[2], measured.settings)
    assert found is not None and found.rate is not None
    assert rows[2][1] == f"not reached at {found.rate:,.0f}"


def test_the_background_cpu_has_its_own_column_and_the_prediction_its_table(
    written: ReportFiles,
) -> None:
    text = written.summary.read_text()
    header = first_table(text)[0]
    assert "background CPU (cores, no traffic)" in header
    assert "CPU s / 1,000 req at 80 req/s (reference)" in header
    assert "### The CPU-additive prediction against the measure" in text
    for source in ("Ueda et al. 2016", "Al-Debagy and Martinek 2018", "Blinowski et al. 2022"):
        assert source in text


def test_every_plot_is_written_and_embedded_in_the_page(written: ReportFiles) -> None:
    page = written.html.read_text()
    assert set(written.plots) == {"load", "cpu", "endpoints", "isolation"}
    for path in written.plots.values():
        assert path.read_bytes().startswith(b"\x89PNG")
    assert page.count('src="data:image/png;base64,') == len(written.plots)


def test_the_page_has_no_external_reference(written: ReportFiles) -> None:
    page = written.html.read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "@import" not in page and "url(" not in page
    assert "fetch(" not in page and "XMLHttpRequest" not in page


def test_the_charts_are_inlined_with_uplots_licence_and_their_data(
    written: ReportFiles, measured: Comparison
) -> None:
    page = written.html.read_text()
    assert "uPlot 1.6.32" in page and "Permission is hereby granted" in page  # MIT: the notice
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page)
    assert found is not None
    data = json.loads(found.group(1))
    assert [entry["key"] for entry in data["architectures"]] == [
        architecture.key for architecture in measured.architectures
    ]
    assert len({entry["colour"] for entry in data["architectures"]}) == len(measured.architectures)
    direct = data["search"]["series"][0]
    steps = measured.architectures[0].search
    assert [count for count in direct["requests"] if count] == [s.total.requests for s in steps]
    assert page.count('<div data-chart="') == len(written.plots)


def test_the_page_names_every_architecture_and_endpoint(
    written: ReportFiles, measured: Comparison
) -> None:
    page = written.html.read_text()
    for architecture in measured.architectures:
        assert architecture.title in page
    for name in analysis.endpoint_names(measured):
        assert name in page


def test_the_json_round_trips(written: ReportFiles, measured: Comparison) -> None:
    assert Comparison.load(written.json) == measured


def test_request_counts_agree_with_locusts_total(measured: Comparison) -> None:
    for architecture in measured.architectures:
        for window in architecture.windows:
            parts = [found for found in window.endpoints if found.name != AGGREGATED]
            assert sum(found.requests for found in parts) == window.total.requests


def test_problems_are_shown() -> None:
    measured = comparison()
    measured.architectures[2].problems.append("the search service restarted once")
    assert "the search service restarted once" in html(measured, plots={})


def test_missing_windows_do_not_crash_the_report(tmp_path: Path) -> None:
    measured = comparison()
    direct, stage_0, split = measured.architectures
    direct.windows = []  # never measured
    stage_0.windows = [found for found in stage_0.windows if found.phase == "search"][:1]
    split.windows = [found for found in split.windows if found.phase != "reference"]
    files = write_report(measured, tmp_path)
    _, _, *rows = first_table(files.summary.read_text())
    assert len(rows) == 3
    assert rows[0][1:] == ["-"] * 9
    assert len(files.plots) == 4


def test_no_limit_anywhere_is_said_plainly() -> None:
    text = summary_markdown(comparison(p95_bound_ms=1.0))
    assert "no limit (no step under the bounds)" in text
    assert "monolith direct no step under the bounds (the first, 10 users, broke them)" in text


def test_a_saturated_generator_is_named_in_the_verdict() -> None:
    measured = comparison()
    split = measured.architectures[2]
    split.windows = [
        dataclasses.replace(
            window, resources=dataclasses.replace(window.resources, generator_busiest_core=0.97)
        )
        for window in split.windows
    ]
    text = summary_markdown(measured)
    assert "Read the figures of stage 5: full split with care: in 8 of its 8 windows" in text
    assert "- stage 5: full split: search at 10 users: the busiest locust process used 97%" in text


def test_the_demos_last_screen_reads_the_verdict_and_the_limits_back(
    written: ReportFiles, measured: Comparison
) -> None:
    from strangler.cli.demo_summary import comparison_headline, comparison_verdict
    from strangler.compare.verdict import verdict

    assert comparison_verdict(written.summary) == verdict(measured)
    table = comparison_headline(written.summary)
    assert table is not None
    assert [column.header for column in table.columns][:2] == ["architecture", "limit (req/s)"]
    assert table.row_count == len(measured.architectures)
