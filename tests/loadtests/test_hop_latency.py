"""`strangler compare --hop-latency`: its parsing, its refusals (one line, before anything
starts), and, where this machine allows netem, that a round trip inside the namespace grows by
the hop latency.

The refusals are tested against a described machine: a runner answering as `ip` and `tc` answer
on a machine without the permission or without netem (the machine running the tests may have
either). The end-to-end test makes a real namespace and is skipped, with the reason this
machine gave, where it cannot.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence

import pytest
import typer
from typer.testing import CliRunner

from strangler.cli import compare_commands
from strangler.runtime.hop_latency import (
    HopLatencyRefused,
    hop_namespace,
    parse_latency,
    refusal_with,
)

NO_NETEM = "Error: Specified qdisc kind is unknown."


class Machine:
    """Answers `ip` and `tc` as a machine that refuses what it is told to refuse; records
    every command, so a test sees what was made and what was removed."""

    def __init__(self, refuses: dict[str, str]) -> None:
        self.refuses = refuses  # a word of the command -> what the machine says
        self.ran: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.ran.append(list(argv))
        for word, said in self.refuses.items():
            if word in argv:
                return subprocess.CompletedProcess(list(argv), 2, "", said)
        return subprocess.CompletedProcess(list(argv), 0, "", "")


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [("0.5ms", 0.5), ("500us", 0.5), ("2 ms", 2.0), ("0.001s", 1.0), ("3", 3.0), (".25ms", 0.25)],
)
def test_a_hop_latency_is_read_in_milliseconds(text: str, milliseconds: float) -> None:
    assert parse_latency(text) == pytest.approx(milliseconds)


@pytest.mark.parametrize("text", ["", "fast", "-1ms", "0ms", "5 min", "2000ms"])
def test_a_hop_latency_that_is_no_delay_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="want a delay"):
        parse_latency(text)


def test_the_environments_databases_cannot_be_reached_from_the_namespace() -> None:
    refused = refusal_with(use_environment_databases=True)
    assert refused is not None and "--use-environment-databases" in refused
    assert refusal_with(use_environment_databases=False) is None


def test_a_machine_without_netem_is_refused_and_left_as_it_was() -> None:
    machine = Machine({"netem": NO_NETEM})
    with (
        pytest.raises(HopLatencyRefused, match="this kernel has no netem") as refused,
        hop_namespace(0.5, machine),
    ):
        pytest.fail("nothing may run without the delay")
    assert NO_NETEM in str(refused.value)
    made = machine.ran[0]
    assert made[:3] == ["ip", "netns", "add"]
    assert machine.ran[-1] == ["ip", "netns", "delete", made[3]]


def test_no_permission_for_a_namespace_is_refused_before_anything_else() -> None:
    machine = Machine({"add": "mount --make-shared /run/netns failed: Operation not permitted"})
    with (
        pytest.raises(HopLatencyRefused, match="root or CAP_NET_ADMIN"),
        hop_namespace(0.5, machine),
    ):
        pytest.fail("nothing may run without a namespace")
    assert len(machine.ran) == 1  # nothing was made, so nothing to remove


def test_the_delay_is_half_the_hop_latency_each_way_and_the_namespace_is_removed() -> None:
    machine = Machine({})
    with hop_namespace(0.5, machine) as namespace:
        assert namespace.inside(["python", "-V"])[:4] == ["ip", "netns", "exec", namespace.name]
        assert namespace.environment() == {"STRANGLER_HOP_LATENCY_MS": "0.5"}
    netem = next(argv for argv in machine.ran if "netem" in argv)
    assert netem[-2:] == ["delay", "250us"]
    assert machine.ran[-1] == ["ip", "netns", "delete", namespace.name]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--hop-latency", "fast"], "want a delay like 0.5ms"),
        (["--hop-latency", "0.5ms", "--use-environment-databases"], "cannot reach the databases"),
    ],
)
def test_the_command_refuses_in_one_line_with_exit_2(arguments: list[str], said: str) -> None:
    app = typer.Typer()
    app.command()(compare_commands.compare)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert said in result.output


ROUND_TRIPS = textwrap.dedent(
    """
    import socket, threading, time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def echo():
        connection, _ = server.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := connection.recv(64):
            connection.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(20):
        began = time.perf_counter()
        client.sendall(b"ping")
        client.recv(64)
        times.append(time.perf_counter() - began)
    print(min(times) * 1000)
    """
)


def _fastest_round_trip(argv_prefix: list[str]) -> float:
    done = subprocess.run(
        [*argv_prefix, sys.executable, "-c", ROUND_TRIPS],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return float(done.stdout.strip())


def test_a_round_trip_inside_the_namespace_grows_by_the_hop_latency() -> None:
    """netem never delivers early: the fastest of 20 round trips is at least the hop latency
    (a bound, not a timing), and without the delay it is far below it."""
    hop = 20.0  # ms: far above a loopback round trip, so the bound cannot hold by chance
    try:
        with hop_namespace(hop) as namespace:
            delayed = _fastest_round_trip(namespace.inside([]))
    except HopLatencyRefused as refused:
        pytest.skip(f"this machine cannot add a hop latency: {refused}")
    plain = _fastest_round_trip([])
    assert plain < hop / 4
    assert delayed >= hop * 0.95
    assert delayed < hop * 5  # one hop's delay, not one per packet of the exchange
