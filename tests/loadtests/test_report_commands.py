"""`strangler report` and `strangler diff-reports`: exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from strangler.cli import report_commands
from tests.loadtests.figures import comparison
from tests.loadtests.test_report_diff import slower

app = typer.Typer()
app.command("report")(report_commands.report)
app.command("diff-reports")(report_commands.diff_reports)


@pytest.fixture
def run() -> CliRunner:
    return CliRunner()


def test_a_saved_report_is_rendered_again(run: CliRunner, saved: Path, tmp_path: Path) -> None:
    result = run.invoke(app, ["report", str(saved), "--output", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "report.html").exists()
    assert (tmp_path / "again" / "plots" / "load.png").exists()


def test_an_unchanged_pair_passes(run: CliRunner, saved: Path) -> None:
    result = run.invoke(app, ["diff-reports", str(saved), str(saved), "--fail-on-regression"])
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output


def test_a_regression_fails_when_asked(run: CliRunner, saved: Path, tmp_path: Path) -> None:
    after = tmp_path / "after.json"
    slower(comparison(), "direct", 1.5).save(after)
    arguments = ["diff-reports", str(saved), str(after), "--markdown"]
    assert run.invoke(app, arguments).exit_code == 0
    result = run.invoke(app, [*arguments, "--fail-on-regression"])
    assert result.exit_code == 1
    assert "**REGRESSION**" in result.output


@pytest.mark.parametrize(
    "content", [None, "not json", json.dumps({"schema": "other"}), json.dumps({"schema": "x"})]
)
def test_a_bad_report_is_one_line_and_exit_2(
    run: CliRunner, saved: Path, tmp_path: Path, content: str | None
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    result = run.invoke(app, ["diff-reports", str(saved), str(bad)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: ")


def test_a_report_missing_fields_is_exit_2(run: CliRunner, saved: Path, tmp_path: Path) -> None:
    broken = json.loads(saved.read_text())
    del broken["architectures"][0]["windows"][0]["resources"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    result = run.invoke(app, ["report", str(bad)])
    assert result.exit_code == 2
    assert "not a load comparison report" in result.output


def test_incomparable_reports_are_exit_2(run: CliRunner, saved: Path, tmp_path: Path) -> None:
    after = tmp_path / "after.json"
    comparison(window_seconds=60.0).save(after)
    result = run.invoke(app, ["diff-reports", str(saved), str(after)])
    assert result.exit_code == 2
    assert "window_seconds" in result.output
    assert run.invoke(app, ["diff-reports", str(saved), str(after), "--force"]).exit_code == 0


def test_a_report_from_before_the_hot_name_and_the_hop_latency_renders(
    run: CliRunner, saved: Path, tmp_path: Path
) -> None:
    older = json.loads(saved.read_text())
    del older["settings"]["hot_name"], older["settings"]["hop_latency_ms"]
    path = tmp_path / "older.json"
    path.write_text(json.dumps(older))
    result = run.invoke(app, ["report", str(path), "--output", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "again" / "summary.md").read_text()
    assert "10 hot users (no think time)" in summary
    assert "**hop latency**: none added" in summary
