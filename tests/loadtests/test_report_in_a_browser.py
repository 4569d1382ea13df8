"""The report's interactive charts in a real browser: Debian's Chromium driven by Playwright.

The page is rendered by `strangler report` from a recorded report (`recorded/report.json`: the
bookshelf's short comparison, tests/byom, on SQLite; never a live run here) and opened from
its file with the browser offline. The charts render, hovering a point reads its value and its
request count in the legend, a drag zooms in and a double-click zooms out, a thin bar is grey
and says why; every test fails on a console error or on any request beyond the page itself.
Chromium is Debian's (`apt-get install chromium`, as `.ci/run` does); never a downloaded one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from strangler.cli import report_commands
from tests.support.browser import errors_of, launched, needs_chromium

RECORDED = Path(__file__).parent / "recorded" / "report.json"

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_chromium()


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`strangler report recorded/report.json --output DIR`, as a user renders a saved report."""
    app = typer.Typer()
    app.command("report")(report_commands.report)
    app.command("diff-reports")(report_commands.diff_reports)
    folder = tmp_path_factory.mktemp("rendered")
    result = CliRunner().invoke(app, ["report", str(RECORDED), "--output", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "report.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as found:
        yield found


@pytest.fixture
def page(browser: Any, report_page: Path) -> Iterator[Any]:
    """The report, opened offline; the test fails on a console error or on any request other
    than the page's own file."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    address = report_page.as_uri()
    requested: list[str] = []

    def only_the_page(route: Any) -> None:
        if route.request.url == address:
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_page)
    opened = context.new_page()
    errors = errors_of(opened)
    opened.goto(address)
    opened.wait_for_function("document.body.classList.contains('interactive')")
    yield opened
    context.close()
    assert errors == [], f"the page reported errors: {errors}"
    assert requested == [], f"the page asked for more than itself: {requested}"


def _legend(page: Any, chart: str, series: int) -> str:
    text: str = page.evaluate(
        "([chart, series]) => window.reportCharts[chart].root"
        ".querySelectorAll('.u-legend .u-series')[series].textContent",
        [chart, series],
    )
    return text


def _hover(page: Any, chart: str, x: float, y: float) -> None:
    """Move the mouse onto the point (x, y) of a chart, in its scales' units."""
    at = page.evaluate(
        """([chart, x, y]) => {
            const u = window.reportCharts[chart];
            u.root.scrollIntoView({block: 'center'});
            const box = u.over.getBoundingClientRect();
            return [box.left + u.valToPos(x, 'x'), box.top + u.valToPos(y, 'y')];
        }""",
        [chart, x, y],
    )
    page.mouse.move(at[0] - 3, at[1])
    page.mouse.move(at[0], at[1])


def test_every_chart_renders_in_place_of_its_picture(page: Any, recorded: dict[str, Any]) -> None:
    charts = page.evaluate("Object.keys(window.reportCharts)")
    assert {"throughput", "p95", "cpu-0", "cpu-1", "cpu-2", "endpoints", "isolation"} <= set(
        charts
    )
    assert page.locator(".chart canvas").count() == len(charts)
    assert page.locator("img.static").first.is_hidden()  # the PNGs: for readers without scripts
    names = page.evaluate(
        "window.reportCharts.throughput.series.slice(1).map(s => s.label)"
    )
    assert names == [found["title"] for found in recorded["architectures"] if found["windows"]]


def test_hovering_a_step_reads_its_throughput_and_request_count(
    page: Any, recorded: dict[str, Any]
) -> None:
    architecture = recorded["architectures"][0]
    steps = [window for window in architecture["windows"] if window["phase"] == "search"]
    step = steps[-1]
    total = next(entry for entry in step["endpoints"] if entry["name"] == "Aggregated")
    _hover(page, "throughput", step["users"], total["requests_per_second"])
    said = _legend(page, "throughput", 1)
    assert architecture["title"] in said
    assert f"{total['requests_per_second']:,.0f} req/s" in said
    assert f"n={total['requests']:,}" in said


def test_a_drag_zooms_in_and_a_double_click_zooms_out(page: Any) -> None:
    scale = "(() => { const x = window.reportCharts.endpoints.scales.x; return [x.min, x.max]; })()"
    before = page.evaluate(scale)
    box = page.evaluate(
        "(() => { window.reportCharts.endpoints.root.scrollIntoView({block: 'center'});"
        " const b = window.reportCharts.endpoints.over.getBoundingClientRect();"
        " return [b.left, b.top, b.width, b.height]; })()"
    )
    left, top, width, height = box
    page.mouse.move(left + width * 0.05, top + height / 2)
    page.mouse.down()
    page.mouse.move(left + width * 0.3, top + height / 2, steps=5)
    page.mouse.up()
    zoomed = page.evaluate(scale)
    assert zoomed[1] - zoomed[0] < (before[1] - before[0]) / 2
    page.mouse.dblclick(left + width / 2, top + height / 2)
    assert page.evaluate(scale) == pytest.approx(before)


def test_a_bar_of_too_few_requests_is_grey_and_says_why(
    page: Any, recorded: dict[str, Any]
) -> None:
    data = page.evaluate("JSON.parse(document.getElementById('chart-data').textContent)")
    endpoints = data["endpoints"]
    thin = [
        (series_index, at)
        for series_index, series in enumerate(endpoints["series"])
        for at, count in enumerate(series["requests"])
        if 0 < count < data["minSamples"]
    ]
    assert thin, "the recorded report has no endpoint of too few requests to show"
    series_index, at = thin[0]
    series = endpoints["series"][series_index]
    _hover(page, "endpoints", at, series["p95"][at] or 0)
    said = _legend(page, "endpoints", series_index + 1)
    assert f"n={series['requests'][at]}" in said
    assert f"fewer than {data['minSamples']} requests, a p95 too thin to judge" in said
    assert page.locator(".chart-note").first.is_visible()
    fill = page.evaluate(
        """([series, at]) => {
            const u = window.reportCharts.endpoints;
            const slot = 0.8 / (u.series.length - 1);
            const x = u.valToPos(at - 0.4 + (series + 0.5) * slot, 'x', true);
            const y = u.valToPos(u.data[series + 1][at] / 2, 'y', true);
            const pixel = u.ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data;
            return '#' + [pixel[0], pixel[1], pixel[2]]
                .map(v => v.toString(16).padStart(2, '0')).join('');
        }""",
        [series_index, at],
    )
    assert fill == data["few"]
