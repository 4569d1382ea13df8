"""The diff of two reports: regressions flagged, an unchanged pair passes, apples only."""

from __future__ import annotations

import dataclasses

import pytest

from strangler.compare import report_diff
from strangler.compare.results import Comparison
from tests.loadtests.figures import comparison


def slower(measured: Comparison, key: str, factor: float) -> Comparison:
    """The same comparison with one architecture's CPU per request multiplied by `factor`."""
    architecture = measured.architecture(key)
    assert architecture is not None
    architecture.windows = [
        dataclasses.replace(
            window,
            resources=dataclasses.replace(
                window.resources, cpu_seconds=window.resources.cpu_seconds * factor
            ),
        )
        for window in architecture.windows
    ]
    return measured


def test_an_unchanged_pair_has_no_regression() -> None:
    found = report_diff.diff(comparison(), comparison())
    assert found.regressions == []
    assert {change.percent for change in found.changes} == {0.0}
    assert "no regression" in report_diff.markdown(found)


def test_more_cpu_per_request_is_a_regression() -> None:
    found = report_diff.diff(comparison(), slower(comparison(), "stage-5", 1.3))
    assert [(change.architecture, change.figure) for change in found.regressions] == [
        ("stage 5: full split", "CPU s / 1,000 req at 80 req/s")
    ]
    assert "**REGRESSION**" in report_diff.markdown(found)


def test_a_rise_within_the_threshold_passes() -> None:
    found = report_diff.diff(comparison(), slower(comparison(), "stage-5", 1.1))
    assert found.regressions == []


def test_a_lost_limit_is_a_regression() -> None:
    after = comparison()
    split = after.architecture("stage-5")
    assert split is not None
    split.windows = [window for window in split.windows if window.phase != "search"]
    figures = {change.figure for change in report_diff.diff(comparison(), after).regressions}
    assert "limit req/s" in figures


def test_architectures_in_only_one_report_are_listed() -> None:
    after = comparison()
    after.architectures.pop(1)
    found = report_diff.diff(comparison(), after)
    assert found.only_before == ["stage 0: all monolith"]
    assert "only in the report before: stage 0: all monolith" in report_diff.markdown(found)


def test_reports_with_another_search_or_reference_rate_are_refused() -> None:
    with pytest.raises(report_diff.Incomparable, match="max_users"):
        report_diff.diff(comparison(), comparison(max_users=40))
    with pytest.raises(report_diff.Incomparable, match="reference_rate"):
        report_diff.diff(comparison(), comparison(reference_rate=50.0))


def test_reports_with_another_worker_budget_are_refused_unless_forced() -> None:
    before, after = comparison(), comparison(worker_budget=6)
    with pytest.raises(report_diff.Incomparable, match="worker_budget"):
        report_diff.diff(before, after)
    found = report_diff.diff(before, after, is_forced=True)
    assert "settings differ (forced): worker_budget" in report_diff.markdown(found)
