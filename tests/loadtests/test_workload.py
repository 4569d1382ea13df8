"""The scenario file: what it holds, and clear errors naming the place of a mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strangler.compare.workload import (
    ENDPOINTS,
    TASKS,
    Plan,
    ScenarioError,
    load_scenario,
)

# Read, never imported: importing locust monkey-patches the test process (gevent).
SCENARIO = Path(__file__).resolve().parents[2] / "loadtests" / "scenario.toml"
LOCUSTFILE = SCENARIO.with_name("locustfile.py")


def test_the_packaged_scenario_loads_with_its_profiles() -> None:
    scenario = load_scenario()
    assert {"short", "full"} <= set(scenario.profiles)
    full = scenario.profile("full")
    assert full.reference_users in full.steps
    assert full.generator_processes > 1  # the full run uses locust's master and workers
    assert scenario.endpoints() >= {"GET /api/threads/{id}", "POST /api/polls/{id}/votes"}


def test_every_task_names_the_endpoints_the_locustfile_sends_to() -> None:
    source = LOCUSTFILE.read_text()
    tasks = {task for kind in TASKS.values() for task in kind}
    assert tasks == set(ENDPOINTS)
    for task in tasks:
        assert re.search(rf"def {task}\(self\)", source), task
    named = set(re.findall(r'"(?:GET|POST|PATCH)", [^,]+, "([^"]+)"', source))
    named |= set(re.findall(r'name = "([^"]+)"', source))
    paths = {endpoint.split(" ", 1)[1] for found in ENDPOINTS.values() for endpoint in found}
    assert paths == named


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("weight = 55", "weight = -55\nnope = 1"), "must add up"),
        (("think_seconds = [0.2, 0.8]", "think_seconds = [0.8, 0.2]"), "reader.think_seconds"),
        (("search = 3", "vote = 3"), "kinds.searcher.tasks: a searcher cannot vote"),
        (("reference_users = 12", "reference_users = 13"), "profiles.short: reference_users"),
        (("steps = [4, 12]", "steps = [12, 4]"), "profiles.short.steps"),
        (("[kinds.voter]", "[kinds.lurker]"), "kinds.lurker: unknown kind"),
        (("[hot]\nendpoint", "[hot]\nwhere"), "missing 'endpoint'"),
        (("weight = 15", "weight = = 15"), "scenario.toml"),
    ],
)
def test_a_bad_scenario_is_refused_with_where_and_what(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = SCENARIO.read_text()
    assert change[0] in text
    broken = tmp_path / "scenario.toml"
    broken.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(broken)


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="known: full, short"):
        load_scenario().profile("huge")


def test_a_plan_holds_every_step_then_the_hot_phase_and_round_trips(tmp_path: Path) -> None:
    scenario = load_scenario()
    profile = scenario.profile("short")
    data = {"threads": 20, "users": 10, "polls": 2, "tokens": {"1": "t"}}
    plan = Plan.for_profile(profile, scenario, data=data)
    assert [(phase.phase, phase.users, phase.hot_users) for phase in plan.phases] == [
        *(("step", users, 0) for users in profile.steps),
        ("hot search", profile.reference_users, profile.hot_users),
    ]
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan
