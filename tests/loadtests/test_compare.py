"""`strangler compare` end to end: every architecture started for real, loaded by locust as a
master with worker processes, and a report that is complete and agrees with locust's own
figures.

The run uses a scenario of its own (every kind of user present at a few users, short think
times) so that seconds per architecture reach every endpoint; everything else is the real
command on the embedded defaults (SQLite files, the database-backed bus).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from strangler.compare import analysis
from strangler.compare.comparison import candidates
from strangler.compare.report_tables import limit_cell
from strangler.compare.results import AGGREGATED, Comparison
from strangler.compare.workload import load_scenario
from tests.support.command_line import environment, strangler

pytestmark = pytest.mark.slow

# The forum's tasks as its scenario names them, then a small mix and a quick profile of our own.
_FORUM = (Path(__file__).resolve().parents[2] / "loadtests" / "scenario.toml").read_text()
TASKS = _FORUM[_FORUM.index("[tasks]") : _FORUM.index("[kinds.")]
SCENARIO = (
    TASKS
    + """
[kinds.reader]
weight = 2
think_seconds = [0.05, 0.2]
tasks = { list_threads = 1, get_thread = 1, list_posts = 1, get_user = 1, list_users = 1 }

[kinds.voter]
weight = 1
think_seconds = [0.05, 0.2]
tasks = { get_poll = 1, vote = 1, results = 1, results_page = 1 }

[kinds.poster]
weight = 1
think_seconds = [0.05, 0.2]
tasks = { start_thread = 1, add_post = 1, change_profile = 1, get_thread = 1, me = 1 }

[kinds.searcher]
weight = 1
think_seconds = [0.05, 0.2]
tasks = { search = 1, get_thread = 1 }

[kinds.newcomer]
weight = 1
think_seconds = [0.05, 0.2]
tasks = { sign_up = 1, me = 1 }

[hot]
endpoint = "GET /api/search"

[profiles.ci]
start_users = 12       # two users of each kind, so every task is drawn in a 2 s window
max_users = 24         # the search: 12, then at most 24 users (a 250 ms bound is not crossed)
search_seconds = 6.0
settle_seconds = 0.0   # as the short profile: locust's shape ticks once a second
window_seconds = 2.0
idle_seconds = 1.0
reference_rate = 30.0
reference_users = 6    # below the search's last step: the reference starts after a step down
hot_users = 2
p95_bound_ms = 1000.0
error_bound = 0.01
worker_budget = 4
generator_processes = 2
scale = 0.05
"""
)


@dataclass
class Run:
    folder: Path
    output: str
    comparison: Comparison


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("compare")
    scenario = folder / "scenario.toml"
    scenario.write_text(SCENARIO)
    finished = strangler(
        folder, "compare", "--profile", "ci", "--output", "report",
        env={"STRANGLER_SCENARIO": str(scenario)}, timeout=900,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    return Run(folder / "report", finished.stdout, Comparison.load(folder / "report/report.json"))


def test_every_architecture_is_measured_in_order_with_no_problem(run: Run) -> None:
    assert [found.key for found in run.comparison.architectures] == [
        found.key for found in candidates()
    ]
    for architecture in run.comparison.architectures:
        assert architecture.problems == [], architecture.key
        phases = [(w.phase, w.users, w.hot_users) for w in architecture.windows]
        # Background, the search (12 users, then at most 24 unless 12 broke the bound: 6 s
        # hold two steps), the reference and the hot phase.
        assert phases[0] == ("idle", 0, 0)
        assert phases[1] == ("search", 12, 0)
        assert len(phases) in (4, 5, 6)  # 4: the first step already broke the bound
        assert all(phase == "search" and 18 <= users <= 24 for phase, users, _ in phases[2:-2])
        assert phases[-2:] == [("reference", 6, 0), ("hot search", 6, 2)]


def test_each_stage_s_data_was_moved_by_the_system_measured_before_it(run: Run) -> None:
    moves = (run.folder / "logs" / "moves.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in moves] == [
        f"stage-{stage} -> stage {stage + 1}" for stage in range(5)
    ]
    assert all("moved in place in" in line for line in moves), moves


def test_every_endpoint_of_the_mix_is_in_every_architecture(run: Run, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    wanted = load_scenario(scenario).endpoints()
    for architecture in run.comparison.architectures:
        seen = {e.name for w in architecture.windows for e in w.endpoints if e.requests}
        assert wanted <= seen, (architecture.key, wanted - seen)
        hot = architecture.hot
        assert hot is not None, architecture.key
        running = dict(hot.users_by_kind)
        # The hot searchers ran beside exactly the reference users, after the step down.
        assert running.pop("hot", 0) == 2, (architecture.key, hot.users_by_kind)
        assert sum(running.values()) == 6, (architecture.key, hot.users_by_kind)
        reference = architecture.reference
        assert reference is not None and sum(reference.users_by_kind.values()) == 6


def test_the_report_agrees_with_the_figures_locust_wrote(run: Run) -> None:
    """Each window's figures are locust's own (the lines its master wrote), unchanged, and
    each window's aggregate is the sum of its endpoints."""
    for architecture in run.comparison.architectures:
        lines = (run.folder / "logs" / f"windows-{architecture.key}.jsonl").read_text()
        written = [json.loads(line) for line in lines.splitlines()]
        loaded = [window for window in architecture.windows if window.phase != "idle"]
        assert len(written) == len(loaded)
        for window, line in zip(loaded, written, strict=True):
            by_name = {entry["name"]: entry for entry in line["endpoints"]}
            assert {e.name for e in window.endpoints} == set(by_name)
            for found in window.endpoints:
                assert found.requests == by_name[found.name]["requests"]
                assert found.failures == by_name[found.name]["failures"]
                assert found.p95_ms == by_name[found.name]["p95_ms"]
            endpoints = [e for e in window.endpoints if e.name != AGGREGATED]
            assert window.total.requests == sum(e.requests for e in endpoints) > 0
            assert window.total.failures == sum(e.failures for e in endpoints)
            assert sum(window.total.histogram.values()) == window.total.requests
            # A light load on a healthy system: nothing fails (a failure here is a bug).
            assert window.total.failures == 0, [
                (e.name, e.failures) for e in window.endpoints if e.failures
            ]


def test_every_window_has_what_it_cost(run: Run) -> None:
    for architecture in run.comparison.architectures:
        roles = set(architecture.processes.values())
        assert ("proxy" in roles) == (architecture.key != "direct")
        assert "console" not in architecture.processes  # no part of any architecture
        for window in architecture.windows:
            used = window.resources
            assert set(used.cpu_seconds_by_role) <= roles
            assert used.peak_memory_mib > 10
            if window.phase == "idle":  # no traffic: locust has not started yet
                assert used.generator_cpu_seconds == 0 and window.total.requests == 0
                continue
            assert used.cpu_seconds > 0
            assert used.generator_cpu_seconds > 0
            assert 0 < used.generator_busiest_core < 1.5


def test_the_report_files_are_complete(run: Run) -> None:
    html = (run.folder / "report.html").read_text()
    plots = sorted((run.folder / "plots").glob("*.png"))
    assert [plot.stem for plot in plots] == ["cpu", "endpoints", "isolation", "load"]
    assert all(plot.stat().st_size > 5_000 for plot in plots)
    assert html.count("data:image/png;base64,") == len(plots)
    summary = (run.folder / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    assert table[0].startswith(
        "| architecture | limit (req/s) | users at limit | p95 at limit (ms) | CPU s / 1,000 req"
    )
    for architecture in run.comparison.architectures:
        cell = limit_cell(analysis.limit(architecture, run.comparison.settings))
        assert any(row.startswith(f"| {architecture.title} | {cell} |") for row in table)
    for architecture in run.comparison.architectures:
        for name in ("_stats.csv", "_stats_history.csv", ".html"):
            assert (run.folder / "locust" / f"{architecture.key}{name}").stat().st_size > 100
        assert f'href="locust/{architecture.key}.html"' in html
    assert "OTEL_SDK_DISABLED=true" in html
    for architecture in run.comparison.architectures:
        assert architecture.title in html
        assert any(row.startswith(f"| {architecture.title} |") for row in table)
    assert re.search(r"worker budget\W+4", summary)
    assert "the comparison took" in run.output


def processes_of(folder: Path) -> list[psutil.Process]:
    """Processes of a comparison writing to `folder`: the systems' servers (their command lines
    or environments name the home) and locust (its environment names the plan)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            named = " ".join(process.info["cmdline"] or []) + repr(process.environ())
        except psutil.Error:
            continue
        if str(folder) in named and process.pid != os.getpid():
            found.append(process)
    return found


def test_no_process_of_the_run_is_left_behind(run: Run) -> None:
    assert processes_of(run.folder) == []


def test_ctrl_c_stops_the_system_and_locust_with_its_workers(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    command = [sys.executable, "-m", "strangler", "compare", "--profile", "ci", "--only",
               "direct", "--output", "report"]  # fmt: skip
    child = subprocess.Popen(
        command, cwd=tmp_path, env=environment(tmp_path, {"STRANGLER_SCENARIO": str(scenario)}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    windows = tmp_path / "report/logs/windows-direct.jsonl"
    deadline = time.monotonic() + 120
    while not windows.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert windows.exists(), "locust never measured a window"
    assert len(processes_of(tmp_path)) >= 4  # the monolith, its workers, locust and its workers
    child.send_signal(signal.SIGINT)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 130, output
    assert "nothing is left running" in output
    assert processes_of(tmp_path) == []


def test_a_saved_report_compared_with_itself_shows_no_regression(run: Run) -> None:
    report = str(run.folder / "report.json")
    finished = strangler(run.folder, "diff-reports", report, report, "--fail-on-regression")
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_an_unknown_architecture_is_refused_before_anything_starts(tmp_path: Path) -> None:
    finished = strangler(tmp_path, "compare", "--only", "stage-9", "--output", "report")
    assert finished.returncode == 2
    assert "unknown architecture stage-9" in finished.stdout
    assert not (tmp_path / "report").exists()
