"""`strangler extract` and `rollback`: a failed gate stops with what to do, the same command
resumes after the last passed gate, and a half-done extraction rolls back cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from strangler.runtime.processes import free_port
from tests.support.command_line import strangler, strangler_up

QUICK_GATES = {
    "STRANGLER_GATE_SHADOW_MIN_COMPARED": "10",
    "STRANGLER_GATE_CANARY_STEPS": "[100]",
    "STRANGLER_GATE_CANARY_MIN_REQUESTS": "2",
    # Tests never judge wall-clock speed: a loaded CI machine is no measure of a service.
    "STRANGLER_GATE_MAX_P95_RATIO": "1000",
}
# No sample reads and nobody reading: the shadow gate can only wait, then give up.
NOTHING_TO_COMPARE = {**QUICK_GATES, "STRANGLER_GATE_PROBES": "false",
                      "STRANGLER_GATE_TRAFFIC_TIMEOUT_SECONDS": "2"}  # fmt: skip


def passed_gates(folder: Path) -> list[str]:
    state = json.loads((folder / ".strangler" / "migration.json").read_text())
    return list(state["moving"]["passed"]) if state["moving"] else []


def test_a_failed_gate_says_what_to_do_and_the_same_command_resumes_after_it(
    tmp_path: Path,
) -> None:
    with strangler_up(tmp_path, free_port(), "--scale", "0.02"):
        refused = strangler(tmp_path, "extract", "forum")
        assert refused.returncode == 1
        assert "forum is not extracted yet: it comes at stage 3" in refused.stdout
        assert "`strangler extract users` first" in refused.stdout
        stopped = strangler(tmp_path, "extract", "users", env=NOTHING_TO_COMPARE)
        assert stopped.returncode == 1
        assert "✗ shadow its reads" in stopped.stdout
        assert "what to do: send reads to users" in stopped.stdout
        assert passed_gates(tmp_path) == ["schema", "capture", "backfill", "sync", "verify",
                                          "service"]  # fmt: skip
        resumed = strangler(tmp_path, "extract", "users", env=QUICK_GATES)
        assert resumed.returncode == 0, resumed.stdout
        assert "✓ start the users service (passed before)" in resumed.stdout
        assert "reached stage 1" in resumed.stdout
        checked = strangler(tmp_path, "check")
        assert checked.returncode == 0, checked.stdout


def test_a_half_done_extraction_rolls_back_to_where_it_began(tmp_path: Path) -> None:
    with strangler_up(tmp_path, free_port(), "--scale", "0.02") as up:
        assert strangler(tmp_path, "extract", "users", env=NOTHING_TO_COMPARE).returncode == 1
        assert "users" in {process["name"] for process in up.status()["processes"]}
        undone = strangler(tmp_path, "rollback", "users")
        assert undone.returncode == 0, undone.stdout
        assert "reached stage 0" in undone.stdout
        status = up.status()
        checked = strangler(tmp_path, "check")
    assert {process["name"] for process in status["processes"]} == {"monolith", "proxy", "console"}
    assert {route["mode"] for route in status["routes"]} == {"monolith"}
    assert checked.returncode == 0, checked.stdout
