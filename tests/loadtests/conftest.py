"""A report written once per module from a plausible comparison: plotting is the slow part."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.compare.report import ReportFiles, write_report
from strangler.compare.results import Comparison
from tests.loadtests.figures import comparison


@pytest.fixture(scope="module")
def measured() -> Comparison:
    return comparison()


@pytest.fixture(scope="module")
def written(measured: Comparison, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(measured, tmp_path_factory.mktemp("report") / "out")


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    comparison().save(path)
    return path
