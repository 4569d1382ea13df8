"""Simulated distance between processes: a network namespace whose loopback delays every packet.

`strangler compare --hop-latency 0.5ms` runs the whole comparison, every measured process and
the load generator, inside one network namespace made for that run, whose loopback carries a
netem delay of half the hop latency on every packet: each hop's round trip (client -> front,
front -> service, a relay -> its bus...) grows by the hop latency, as it would if the processes
stopped sharing a host. Everything the comparison starts listens and connects on 127.0.0.1, so
it runs unchanged inside; a server outside the namespace (a PostgreSQL or Redis on the host's
127.0.0.1) cannot be reached from it, which is why the comparison refuses
`--use-environment-databases` with a hop latency.

`parse_latency` reads "0.5ms"; `hop_namespace` makes the namespace (refusing, in one line and
before anything starts, where the machine does not allow it: no `ip` or `tc`, no permission to
make a namespace, a kernel without netem) and removes it on the way out; `inside` is the
command line that runs a command in it. This module must never start a measured process
itself, nor change any network but the namespace it made.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

HOP_LATENCY_VARIABLE = "STRANGLER_HOP_LATENCY_MS"  # set inside the namespace: what was added
MOST_MS = 1000.0  # past a second a hop is no longer "distance between machines"
UNITS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}

# Runs a command and returns it finished (the real one is `subprocess.run`; a test passes the
# machine it describes).
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class HopLatencyRefused(RuntimeError):
    """This machine cannot add a hop latency; the message says why in one line."""


def parse_latency(text: str) -> float:
    """Milliseconds from "0.5ms", "500us", "2 ms" or "0.001s" (a bare number is milliseconds)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s)?\s*", text)
    if not found:
        raise ValueError(f"{text!r}: want a delay like 0.5ms, 500us or 2ms")
    milliseconds = float(found.group(1)) * UNITS[found.group(2) or "ms"]
    if not 0 < milliseconds <= MOST_MS:
        raise ValueError(f"{text!r}: want a delay above 0 and at most {MOST_MS:g} ms")
    return milliseconds


def refusal_with(use_environment_databases: bool) -> str | None:
    """Why a hop latency cannot go with the other options, or None."""
    if use_environment_databases:
        return (
            "--hop-latency runs everything in a network namespace of its own, which cannot "
            "reach the databases your environment names on this host: leave out "
            "--use-environment-databases (fresh SQLite files are used)"
        )
    return None


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"no {argv[0]} command")


@dataclass(frozen=True)
class HopNamespace:
    """A namespace made for one run, and the delay its loopback adds to every hop."""

    name: str
    hop_latency_ms: float

    def inside(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` in the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def environment(self) -> dict[str, str]:
        """What a comparison run inside reads to record the hop latency it ran with."""
        return {HOP_LATENCY_VARIABLE: f"{self.hop_latency_ms:g}"}


def _said(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


@contextlib.contextmanager
def hop_namespace(hop_latency_ms: float, run: Runner = _run) -> Iterator[HopNamespace]:
    """A fresh namespace whose loopback is up and delays each packet by half the hop latency;
    removed on the way out. Raises `HopLatencyRefused` when this machine does not allow it."""
    name = f"strangler-hop-{os.getpid()}"
    made = run(["ip", "netns", "add", name])
    if made.returncode != 0:
        raise HopLatencyRefused(
            f"--hop-latency cannot make a network namespace here ({_said(made)}): it needs "
            "iproute2's ip and tc, and root or CAP_NET_ADMIN"
        )
    try:
        there = ["ip", "netns", "exec", name]
        delay = f"{hop_latency_ms * 500:g}us"  # each way: a round trip pays it twice
        steps = [
            ([*there, "ip", "link", "set", "lo", "up"], "bring its loopback up"),
            ([*there, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", delay],
             "add a netem delay"),
        ]  # fmt: skip
        for argv, what in steps:
            done = run(argv)
            if done.returncode != 0:
                raise HopLatencyRefused(
                    f"--hop-latency cannot {what} in a network namespace here ({_said(done)})"
                    + ("; this kernel has no netem (sch_netem)" if "netem" in argv else "")
                )
        yield HopNamespace(name, hop_latency_ms)
    finally:
        run(["ip", "netns", "delete", name])


def recorded_hop_latency() -> float:
    """The hop latency this process runs with (inside a hop namespace), else 0."""
    return float(os.environ.get(HOP_LATENCY_VARIABLE) or 0.0)
