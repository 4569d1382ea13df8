"""Specification of `strangler data ...`: wiring only, one-line errors, honest exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from strangler.cli.data_commands import data_app
from strangler.datapath.link import Link


@pytest.fixture
def run(forum_link: Link, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONOLITH_DATABASE_URL", forum_link.monolith.url.render_as_string(False))
    monkeypatch.setenv("FORUM_DATABASE_URL", forum_link.service.url.render_as_string(False))
    monkeypatch.setenv("PROXY_ADMIN_TOKEN", "no-proxy-here-0123456789")
    return CliRunner()


def test_backfill_verify_and_status_report_and_exit_by_the_outcome(
    run: CliRunner, forum_link: Link
) -> None:
    copied = run.invoke(data_app, ["backfill", "forum", "--chunk-rows", "100"])
    assert copied.exit_code == 0 and "rows/s" in copied.output
    assert run.invoke(data_app, ["verify", "forum"]).exit_code == 0
    with forum_link.service.begin() as connection:
        connection.execute(text("DELETE FROM posts WHERE id = 42"))
    differs = run.invoke(data_app, ["verify", "forum"])
    assert differs.exit_code == 1 and "42" in differs.output
    assert run.invoke(data_app, ["repair", "forum"]).exit_code == 0
    shown = run.invoke(data_app, ["status", "forum"])
    assert shown.exit_code == 0 and "complete" in shown.output


def test_mistakes_are_one_line_and_exit_1(run: CliRunner) -> None:
    unknown = run.invoke(data_app, ["verify", "search"])
    assert unknown.exit_code == 1 and "it builds its data" in unknown.output
    assert "Traceback" not in unknown.output
    early = run.invoke(data_app, ["cutover", "forum", "--proxy-url", "http://127.0.0.1:9"])
    assert early.exit_code == 1 and "error" in early.output and "Traceback" not in early.output
