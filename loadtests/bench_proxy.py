"""Benchmark: what each front costs (Python proxy, nginx, Envoy) against the same backend direct.

Run `python -m loadtests.bench_proxy [--runs 3]` from the repository root. On free loopback
ports it starts a trivial ASGI backend (uvicorn) and the seeded monolith (gunicorn, exactly as
`strangler up` runs it), and in front of each the strangler proxy (`python -m strangler_proxy`,
the stage 0 table, as `strangler up` runs it), nginx as the live data plane and Envoy as the
export, both rendered from the stage 0 table by `strangler.gateways` (each when installed); with
`--reference`, also a minimal aiohttp proxy (what one `ClientSession` alone costs). The
monolith's gunicorn workers each listen on a socket of their own (`--reuse-port`), so the
kernel splits a front's kept-alive connections between them about evenly (`--shared-listener`:
gunicorn's one socket, as `strangler up` serves it, where one worker often takes most). Each run
measures every front of every backend once, at 32 connections and at one, in an order that
rotates between runs; ratios are taken within a run and reported as medians over the runs, with
requests/s, p50/p99 and the CPU microseconds per request of the front and of the backend, and
next to the throughput ratio the CPU model backend / (backend + front), which gunicorn's split
of kept-alive connections between its workers does not move (it moves direct throughput by up
to 3x between runs; each run records the split, docs/architecture.md). Each measurement also
records the backend's involuntary context switches per request and the machine's idle CPU
share, which explain most of the gap between the two ratios (docs/gateways.md, "Benchmark");
`--nginx-normal` also measures nginx without the live plane's SCHED_BATCH.

Load comes from `wrk` when installed, else from an aiohttp closed-loop client in its own
process. Targets: (issue 3) proxy >= 0.85x direct on the monolith's GET /api/threads/{id},
>= 0.25x on the trivial backend, under 1 ms added p50 at one connection; (issue 14) nginx
>= 0.85x direct on the monolith by both ratios, under 0.5 ms added p50 at one connection.
This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests.fronts import (
    SERVING_PIDS,
    TOKEN_SECRET,
    envoy,
    nginx,
    reference_aiohttp_proxy,
    replace_workers,
    seeded_monolith,
    strangler_proxy,
    trivial_backend,
)
from loadtests.fronts import _process as _process  # re-exported: bench_services uses these
from strangler.compare.load import WorkerSplit, measure_run
from strangler.compare.load import measure as measure

__all__ = ["SERVING_PIDS", "TOKEN_SECRET", "main", "measure"]


@dataclass
class Measurement:
    run: int
    backend: str
    front: str  # direct, proxy, nginx, envoy or aiohttp
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU (user + system) per request of the process tree answering on that front (the backend
    # itself for `direct`), and of the backend behind a proxy. Steadier than requests/s.
    front_cpu_us: float | None = None
    backend_cpu_us: float | None = None
    # The front's connections per gunicorn worker halfway through (monolith only).
    split: list[int] = field(default_factory=list)
    # Involuntary context switches per request of the backend's threads (the front's, direct),
    # and the share of the machine's CPU left idle during the run.
    backend_preemptions: float | None = None
    idle_share: float | None = None


# --- report --------------------------------------------------------------------------------

# Wide enough for the tables when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 150)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cells(values: list[float | None], template: str) -> str:
    return " ".join(template.format(v) if v is not None else "-" for v in values)


def ratios(results: list[Measurement]) -> dict[str, Any]:
    """Per backend, front and connection count: each run's ratio through/direct and the median."""
    index = {(m.run, m.backend, m.front, m.connections): m for m in results}
    found: dict[str, Any] = {}
    for run, backend, front, connections in sorted(index):
        direct = index.get((run, backend, "direct", connections))
        if front == "direct" or direct is None or not direct.requests_per_second:
            continue
        through = index[(run, backend, front, connections)]
        entry = found.setdefault(
            f"{backend}/{front}/c{connections}",
            {"throughput": [], "cpu_model": [], "added_p50_ms": []},
        )
        entry["throughput"].append(
            round(through.requests_per_second / direct.requests_per_second, 3)
        )
        model = cpu_model(through)
        if model is not None:
            entry["cpu_model"].append(model)
        entry["added_p50_ms"].append(round(through.p50_ms - direct.p50_ms, 3))
    for entry in found.values():
        entry["median_throughput"] = _median(entry["throughput"])
        entry["median_cpu_model"] = _median(entry["cpu_model"])
        entry["median_added_p50_ms"] = _median(entry["added_p50_ms"])
    return found


def cpu_model(through: Measurement) -> float | None:
    """backend / (backend + front), CPU per request measured behind the front: the share of
    direct throughput a front leaves when both saturate the same cores. Unlike requests/s it
    does not move with how gunicorn's workers split the kept-alive connections."""
    if through.front_cpu_us is None or through.backend_cpu_us is None:
        return None
    return round(through.backend_cpu_us / (through.backend_cpu_us + through.front_cpu_us), 3)


def _print_report(results: list[Measurement], generator: str, runs: int) -> dict[str, Any]:
    table = Table(title=f"medians of {runs} run(s), load from {generator}")
    for column in ("backend", "front", "conns", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    measured_columns = (
        "front CPU us/req", "backend CPU us/req", "backend preempted /req", "CPU idle",
        "worker split per run",
    )  # fmt: skip
    for column in measured_columns:
        table.add_column(column, justify="right")
    groups: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in results:
        groups.setdefault((m.backend, m.front, m.connections), []).append(m)
    for (backend, front, connections), group in groups.items():
        front_cpu = _median([m.front_cpu_us for m in group if m.front_cpu_us is not None])
        backend_cpu = _median([m.backend_cpu_us for m in group if m.backend_cpu_us is not None])
        preempted = _median(
            [m.backend_preemptions for m in group if m.backend_preemptions is not None]
        )
        idle = _median([m.idle_share for m in group if m.idle_share is not None])
        table.add_row(
            backend,
            front,
            str(connections),
            f"{_median([m.requests_per_second for m in group]):,.0f}",
            f"{_median([m.p50_ms for m in group]):.3f}",
            f"{_median([m.p99_ms for m in group]):.3f}",
            str(sum(m.errors for m in group)),
            f"{front_cpu:,.0f}" if front_cpu is not None else "",
            f"{backend_cpu:,.0f}" if backend_cpu is not None else "",
            f"{preempted:.2f}" if preempted is not None else "",
            f"{idle:.1%}" if idle is not None else "",
            " ".join("/".join(map(str, m.split)) for m in group if m.split),
        )
    console.print(table)
    found = ratios(results)
    table = Table(title="through / direct, ratio of each run (median)")
    columns = (
        "path", "throughput per run", "median", "CPU model per run", "median",
        "added p50 ms per run", "median",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for key, entry in found.items():
        model = entry["median_cpu_model"]
        table.add_row(
            key,
            _cells(entry["throughput"], "{:.2f}x"),
            f"{entry['median_throughput']:.2f}x",
            _cells(entry["cpu_model"], "{:.2f}x"),
            f"{model:.2f}x" if model is not None else "-",
            _cells(entry["added_p50_ms"], "{:+.3f}"),
            f"{entry['median_added_p50_ms']:+.3f}",
        )
    console.print(table)
    _print_verdict(found)
    return found


def _print_verdict(found: dict[str, Any]) -> None:
    targets = (
        ("monolith/proxy/c32", "median_throughput", ">=", 0.85, "x direct on the monolith"),
        ("trivial/proxy/c32", "median_throughput", ">=", 0.25, "x direct on a trivial backend"),
        ("trivial/proxy/c1", "median_added_p50_ms", "<", 1.0, " ms added p50 at 1 connection"),
        # issue 14: the nginx data plane on the monolith, both ratios, and its added latency
        ("monolith/nginx/c32", "median_throughput", ">=", 0.85, "x direct through nginx"),
        ("monolith/nginx/c32", "median_cpu_model", ">=", 0.85, "x direct through nginx (CPU)"),
        ("monolith/nginx/c1", "median_added_p50_ms", "<", 0.5, " ms added p50 through nginx"),
    )
    for key, figure, sense, bound, what in targets:
        entry = found.get(key)
        if entry is None or entry[figure] is None:
            continue
        value = entry[figure]
        is_met = value >= bound if sense == ">=" else value < bound
        verdict = "met" if is_met else "NOT met"
        console.print(f"target {sense} {bound}{what}: {value:.3f} ({key}) -> {verdict}")


def _measure_all(
    arguments: argparse.Namespace, fronts_of: dict[str, dict[str, str | None]], use_wrk: bool
) -> list[Measurement]:
    results: list[Measurement] = []
    for run in range(1, arguments.runs + 1):
        for backend in fronts_of:
            path = TARGETS[backend]
            base_url = fronts_of[backend]["direct"]
            assert base_url is not None
            backend_pid = SERVING_PIDS[base_url]
            split = WorkerSplit(backend_pid, int(base_url.rsplit(":", 1)[1]))
            if backend == "monolith":
                replace_workers(backend_pid)  # every front's connections split anew this run
            fronts = [(f, url) for f, url in fronts_of[backend].items() if url is not None]
            shift = (run - 1) % len(fronts)  # no front is always measured first
            fronts = fronts[shift:] + fronts[:shift]
            counts = [arguments.connections, 1]
            for connections in counts:
                for front, url in fronts:
                    is_direct = front == "direct"
                    watched = {"front": SERVING_PIDS[url]}
                    if not is_direct:
                        watched["backend"] = backend_pid
                    measured = measure_run(
                        url + path,
                        connections,
                        arguments.seconds,
                        use_wrk,
                        watched,
                        split if backend == "monolith" else None,
                    )
                    preempted = measured.preemptions_per_request
                    m = Measurement(
                        run, backend, front, connections, measured.requests_per_second,
                        measured.p50_ms, measured.p99_ms, measured.errors,
                        measured.cpu_us_per_request.get("front"),
                        measured.cpu_us_per_request.get("backend"), measured.split,
                        preempted.get("front" if is_direct else "backend"), measured.idle_share,
                    )  # fmt: skip
                    results.append(m)
                    split_text = "/".join(map(str, m.split)) if m.split else ""
                    console.print(
                        f"  run {run}/{arguments.runs} {backend:<9} {front:<8} c={connections:<3}"
                        f" {m.requests_per_second:8.0f} req/s {split_text}"
                    )
    return results


TARGETS = {"trivial": "/", "monolith": "/api/threads/1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--runs", type=int, default=3, help="rounds over every front; medians")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the monolith")
    parser.add_argument(
        "--shared-listener",
        action="store_true",
        help="the monolith's workers share gunicorn's one socket (uneven splits of kept-alive"
        " connections) instead of a socket each (--reuse-port: the kernel balances them)",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="turn the fronts' access logs off"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the aiohttp client even if wrk exists"
    )
    parser.add_argument(
        "--traced",
        action="store_true",
        help="the strangler proxy records a span per request and per upstream attempt",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure a minimal aiohttp proxy (the trivial backend only)",
    )
    parser.add_argument(
        "--backend",
        choices=sorted(TARGETS),
        action="append",
        help="measure only this backend (repeatable; default: both)",
    )
    parser.add_argument(
        "--nginx-normal",
        action="store_true",
        help="also measure nginx under the system's default scheduling policy (nginx-normal),"
        " beside the live plane's SCHED_BATCH (nginx)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args()
    backends = arguments.backend or list(TARGETS)

    from strangler.runtime.processes import free_port

    use_wrk = shutil.which("wrk") is not None and not arguments.no_wrk
    generator = "wrk (1 thread)" if use_wrk else "aiohttp closed loop (separate process)"
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as temporary, ExitStack() as stack:
        workdir = Path(temporary)
        logs = workdir / "logs"
        with console.status("starting the backends and the fronts"):
            bases = {}
            if "trivial" in backends:
                bases["trivial"] = stack.enter_context(trivial_backend(free_port(), logs))
            if "monolith" in backends:
                bases["monolith"] = stack.enter_context(
                    seeded_monolith(
                        free_port(),
                        workdir,
                        logs,
                        arguments.workers,
                        balanced=not arguments.shared_listener,
                    )
                )
            access_log = not arguments.no_access_log
            fronts_of: dict[str, dict[str, str | None]] = {}
            for backend, base in bases.items():
                proxy_url = stack.enter_context(
                    strangler_proxy(free_port(), base, workdir, logs, access_log, arguments.traced)
                )
                fronts_of[backend] = {
                    "direct": base,
                    "proxy": proxy_url,
                    "nginx": stack.enter_context(
                        nginx(free_port(), base, proxy_url, workdir, access_log)
                    ),
                    "envoy": stack.enter_context(
                        envoy(free_port(), base, workdir, logs, access_log)
                    ),
                }
                if arguments.nginx_normal:
                    fronts_of[backend]["nginx-normal"] = stack.enter_context(
                        nginx(free_port(), base, proxy_url, workdir, access_log, "normal")
                    )
                if arguments.reference and backend == "trivial":
                    fronts_of[backend]["aiohttp"] = stack.enter_context(
                        reference_aiohttp_proxy(free_port(), base, logs)
                    )
        for front, remedy in (
            ("nginx", "apt-get install nginx"),
            ("envoy", "pip install -e '.[envoy]'"),
        ):
            if all(fronts[front] is None for fronts in fronts_of.values()):
                console.print(f"  {front} is not installed ({remedy}): skipped")
        results = _measure_all(arguments, fronts_of, use_wrk)
    found = _print_report(results, generator, arguments.runs)
    if arguments.json:
        document = {
            "generator": generator,
            "runs": arguments.runs,
            "results": [asdict(m) for m in results],
            "ratios": found,
        }
        arguments.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
