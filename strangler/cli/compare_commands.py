"""`strangler compare`: the side-by-side load comparison of every architecture, with a report.

It only wires the parts: the scenario (`strangler.compare.workload`), the run
(`strangler.compare.comparison`), the report (`strangler.compare.report`), and a progress bar per
architecture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from strangler.cli.interrupts import StopRequested, ignore_signals, stop_on_signals
from strangler.compare.comparison import candidates, run_comparison
from strangler.compare.report import write_report
from strangler.compare.workload import Profile, ScenarioError, load_scenario
from strangler.runtime.hop_latency import (
    HopLatencyRefused,
    hop_namespace,
    parse_latency,
    recorded_hop_latency,
    refusal_with,
)


def compare(
    profile: str = typer.Option("short", help="A profile of the scenario: short or full."),
    output: Path = typer.Option(Path("compare-report"), help="Where the report is written."),
    scenario: Path | None = typer.Option(
        None, help="A scenario file (default: STRANGLER_SCENARIO, else loadtests/scenario.toml)."
    ),
    only: list[str] | None = typer.Option(
        None, help="Measure only these architectures (direct, stage-0 ... stage-5); repeatable."
    ),
    generator_processes: int | None = typer.Option(
        None, help="Locust processes (1: headless alone; more: a master and workers)."
    ),
    use_environment_databases: bool = typer.Option(
        False,
        help="Run on the databases MONOLITH_DATABASE_URL, USERS_DATABASE_URL, ... name (they are"
        " seeded and migrated stage by stage) instead of fresh SQLite files in --output.",
    ),
    hop_latency: str | None = typer.Option(
        None,
        help="Simulated distance: add this round trip (e.g. 0.5ms) to every hop between"
        " processes, running the whole comparison in a network namespace whose loopback has a"
        " netem delay (root or CAP_NET_ADMIN, and netem, needed).",
    ),
) -> None:
    """Measure the monolith alone, behind the proxy, at every stage and fully split, under the
    same step load and isolation experiment; write report.html, summary.md and report.json."""
    console = Console(highlight=False)
    try:
        loaded = load_scenario(scenario)
        chosen = loaded.profile(profile)
    except ScenarioError as error:
        console.print(f"[red]the scenario cannot run[/]: {error}")
        raise typer.Exit(2) from error
    if generator_processes is not None:
        chosen = _with_generators(chosen, generator_processes)
    known = [found.key for found in candidates()]
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        console.print(
            f"[red]unknown architecture[/] {', '.join(unknown)}; known: {', '.join(known)}"
        )
        raise typer.Exit(2)
    output = output.resolve()
    if hop_latency is not None:
        arguments = ["--profile", profile, "--output", str(output)]
        arguments += ["--scenario", str(scenario.resolve())] if scenario else []
        arguments += [part for key in only or [] for part in ("--only", key)]
        if generator_processes is not None:
            arguments += ["--generator-processes", str(generator_processes)]
        code = _in_hop_namespace(console, hop_latency, arguments, use_environment_databases)
        raise typer.Exit(code)
    stop_on_signals()
    hop = recorded_hop_latency()
    console.print(
        f"comparing {len(only or known)} architectures, profile [bold]{chosen.name}[/]: a limit "
        f"search from {chosen.start_users} users with no think time (at most "
        f"{chosen.search_seconds:g} s), then {chosen.reference_rate:g} req/s for reference, "
        f"{chosen.window_seconds:g} s windows, {chosen.worker_budget} server workers each"
    )
    try:
        with _Bars(console) as report:
            comparison = run_comparison(
                chosen, loaded, output, only or None, report, use_environment_databases, hop
            )
    except StopRequested:
        console.print("stopped; nothing is left running")
        raise typer.Exit(130) from None
    files = write_report(comparison, output)
    console.print(f"the report: [bold]{files.html}[/]")
    console.print(f"its summary: {files.summary}; raw figures: {files.json}")
    console.print(f"the comparison took {comparison.seconds:.0f} s")
    if any(architecture.problems for architecture in comparison.architectures):
        for architecture in comparison.architectures:
            for problem in architecture.problems:
                console.print(f"[red]{architecture.key}[/]: {problem}")
        raise typer.Exit(1)


def _in_hop_namespace(
    console: Console, latency: str, arguments: list[str], use_environment_databases: bool
) -> int:
    """Run this very comparison again inside a network namespace whose loopback delays every
    hop; refuse in one line, before anything starts, where that cannot be done here."""
    try:
        milliseconds = parse_latency(latency)
    except ValueError as error:
        console.print(f"[red]error[/]: --hop-latency {error}", soft_wrap=True)
        return 2
    refused = refusal_with(use_environment_databases)
    if refused:
        console.print(f"[red]error[/]: {refused}", soft_wrap=True)
        return 2
    try:
        with hop_namespace(milliseconds) as namespace:
            console.print(
                f"every hop between processes pays {milliseconds:g} ms more (network namespace "
                f"{namespace.name}, netem {milliseconds / 2:g} ms each way on its loopback)"
            )
            argv = namespace.inside([sys.executable, "-m", "strangler", "compare", *arguments])
            stop_on_signals()
            child = subprocess.Popen(argv, env={**os.environ, **namespace.environment()})
            try:
                return child.wait()
            except StopRequested:
                # Ctrl-C reached the child too, SIGTERM did not: it stops its own processes.
                ignore_signals()
                child.terminate()
                return child.wait()
    except HopLatencyRefused as error:
        console.print(f"[red]error[/]: {error}", soft_wrap=True)
        return 2


def _with_generators(profile: Profile, processes: int) -> Profile:
    if processes < 1:
        raise typer.BadParameter("at least one locust process")
    return replace(profile, generator_processes=processes)


class _Bars:
    """One progress bar per architecture: its windows measured so far."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[key]:>8}"),
            BarColumn(),
            TextColumn("{task.fields[windows]}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, key: str, doing: str, done: int, total: int) -> None:
        # Before locust writes anything there is no count of windows to show (never "0/None").
        windows = f"{done}/{total} windows" if total else ""
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                doing, key=key, total=total or None, windows=windows
            )
        task = self.tasks[key]
        self.progress.update(
            task, description=doing, completed=done, total=total or None, windows=windows
        )
