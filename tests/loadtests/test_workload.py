"""The scenario file: what it holds, and clear errors naming the place of a mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strangler.compare.workload import (
    Plan,
    ScenarioError,
    Search,
    StepFigures,
    load_scenario,
    next_search_users,
    requests_per_task,
)

# Read, never imported: importing locust monkey-patches the test process (gevent).
SCENARIO = Path(__file__).resolve().parents[2] / "loadtests" / "scenario.toml"
LOCUSTFILE = SCENARIO.with_name("locustfile.py")


def test_the_packaged_scenario_loads_with_its_profiles() -> None:
    scenario = load_scenario()
    assert {"short", "full"} <= set(scenario.profiles)
    full = scenario.profile("full")
    assert full.start_users < full.max_users
    assert full.generator_processes > 1  # the full run uses locust's master and workers
    assert scenario.endpoints() >= {"GET /api/threads/{id}", "POST /api/polls/{id}/votes"}


def test_every_task_names_the_endpoints_the_locustfile_sends_to() -> None:
    source = LOCUSTFILE.read_text()
    scenario = load_scenario(SCENARIO)
    tasks = {task for kind in scenario.kinds for task in kind.tasks}
    assert tasks == set(scenario.task_endpoints)
    for task in tasks:
        assert re.search(rf"def {task}\(user: Visitor\)", source), task
    named = set(re.findall(r'"(?:GET|POST|PATCH)", [^,]+, "([^"]+)"', source))
    named |= set(re.findall(r'name = "([^"]+)"', source))
    paths = {
        endpoint.split(" ", 1)[1]
        for found in scenario.task_endpoints.values()
        for endpoint in found
    }
    assert paths == named


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("weight = 55", "weight = -55\nnope = 1"), "must add up"),
        (("think_seconds = [0.2, 0.8]", "think_seconds = [0.8, 0.2]"), "reader.think_seconds"),
        (("search = 3", "fly = 3"), "kinds.searcher.tasks: fly not in [tasks]"),
        (("[tasks]\n", "[chores]\n"), "missing 'tasks'"),
        (("max_users = 256", "max_users = 2"), "profiles.short: want 1 <= start_users"),
        (("search_seconds = 12.5", "search_seconds = 1.0"), "profiles.short.search_seconds"),
        (("reference_rate = 40.0", "reference_rate = 0.0"), "profiles.short: reference_rate"),
        (("idle_seconds = 1.0\n", ""), "missing 'idle_seconds'"),
        (("[hot]\nendpoint", "[hot]\nwhere"), "missing 'endpoint'"),
        (("weight = 15", "weight = = 15"), "scenario.toml"),
        (('name = "searchers"', 'name = ""'), "hot.name: want a short plural noun"),
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


BOOKSHELF = Path(__file__).resolve().parents[1] / "byom" / "compare"


def test_the_hot_users_are_named_by_each_scenario(tmp_path: Path) -> None:
    assert load_scenario(SCENARIO).hot_name == "searchers"
    assert load_scenario(BOOKSHELF / "scenario.toml").hot_name == "book-list readers"
    unnamed = tmp_path / "scenario.toml"
    unnamed.write_text(SCENARIO.read_text().replace('name = "searchers"', "", 1))
    assert load_scenario(unnamed).hot_name == "hot users"


def test_a_scenario_with_its_own_tasks_has_its_own_kinds_and_endpoints() -> None:
    scenario = load_scenario(BOOKSHELF / "scenario.toml")
    assert [kind.name for kind in scenario.kinds] == ["browser", "librarian"]
    assert scenario.endpoints() == {"GET /api/books", "GET /api/books/{isbn}",
        "GET /books/{isbn}", "GET /books", "GET /api/tags", "POST /api/books",
        "POST /api/members"}  # fmt: skip
    assert requests_per_task(scenario) == 1.0  # every bookshelf task sends one request
    assert scenario.profile("short").max_users <= 64
    # Every task the scenario names is a function of its locustfile, and sends what it says.
    source = (BOOKSHELF / "locustfile.py").read_text()
    for task, endpoints in scenario.task_endpoints.items():
        assert re.search(rf"def {task}\(user: Visitor\)", source), task
        for endpoint in endpoints:
            method, path = endpoint.split(" ", 1)
            assert re.search(rf'"{method}", [^,]+, "{re.escape(path)}"', source), endpoint


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("add_member = 1,", "lend = 1,"), "kinds.librarian.tasks: lend not in [tasks]"),
        (('add_member = ["POST /api/members"]', "add_member = []"), "tasks.add_member: want"),
        (('add_member = ["POST /api/members"]', 'add_member = ["/api/members"]'), "tasks.add"),
    ],
)
def test_a_bad_task_table_is_refused_with_where_and_what(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = (BOOKSHELF / "scenario.toml").read_text()
    assert change[0] in text
    broken = tmp_path / "scenario.toml"
    broken.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(broken)


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="known: full, short"):
        load_scenario().profile("huge")


def test_a_plan_holds_the_search_then_the_reference_and_hot_phases_and_round_trips(
    tmp_path: Path,
) -> None:
    scenario = load_scenario()
    profile = scenario.profile("short")
    data = {"threads": 20, "users": 10, "polls": 2, "tokens": {"1": "t"}}
    plan = Plan.for_profile(profile, scenario, data=data)
    assert plan.search.start_users == profile.start_users
    assert plan.search.p95_bound_ms == profile.p95_bound_ms
    assert [(phase.phase, phase.users, phase.hot_users) for phase in plan.phases] == [
        ("reference", profile.reference_users, 0),
        ("hot search", profile.reference_users, profile.hot_users),
    ]
    # The paced users send the reference rate between them, whatever the mix's requests/task.
    reference = plan.phases[0]
    rate = reference.pace * reference.users * requests_per_task(scenario)
    assert abs(rate - profile.reference_rate) < 1e-9
    assert plan.phases[1].pace == reference.pace
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan


def test_the_short_search_fits_the_demos_time_budget() -> None:
    profile = load_scenario().profile("short")
    plan = Plan.for_profile(profile, load_scenario())
    # background + the whole search budget + reference + hot: well under half a minute each
    assert profile.idle_seconds + plan.seconds <= 25


def test_requests_per_task_counts_the_tasks_that_send_two() -> None:
    scenario = load_scenario()
    assert 1.0 < requests_per_task(scenario) < 1.2  # votes and sign-ups send two requests


SEARCH = Search(start_users=4, max_users=200, seconds=100.0, settle_seconds=1.0,
                window_seconds=4.0, p95_bound_ms=250.0, error_bound=0.01)  # fmt: skip


def figures(users: int, p95: float | None, error_rate: float = 0.0) -> StepFigures:
    return StepFigures(users, 0 if p95 is None else 500, p95, error_rate)


def test_the_search_starts_at_its_first_step() -> None:
    assert next_search_users(SEARCH, []) == 4


def test_a_fast_step_grows_the_users_fourfold_a_slow_one_by_half() -> None:
    assert next_search_users(SEARCH, [figures(4, 5.0)]) == 16  # far from the bound
    assert next_search_users(SEARCH, [figures(40, 190.0)]) == 60  # near it: at least 1.5x
    # Between: aimed at 80% of the bound, as latency grows with users at saturation.
    assert next_search_users(SEARCH, [figures(40, 100.0)]) == 80


def test_the_search_stops_at_a_broken_bound() -> None:
    assert next_search_users(SEARCH, [figures(4, 20.0), figures(16, 260.0)]) is None
    assert next_search_users(SEARCH, [figures(4, 20.0, error_rate=0.02)]) is None
    assert next_search_users(SEARCH, [figures(4, None)]) is None  # no answer at all


def test_the_search_stops_at_its_most_users_and_never_passes_them() -> None:
    assert next_search_users(SEARCH, [figures(150, 30.0)]) == 200
    assert next_search_users(SEARCH, [figures(200, 30.0)]) is None


def test_the_search_stops_when_the_next_step_would_not_fit_its_time() -> None:
    short = Search(4, 1000, 12.0, 1.0, 2.0, 250.0, 0.01)  # room for 4 steps of 3 s
    done = [figures(4 ** (index + 1), 10.0) for index in range(3)]
    assert next_search_users(short, done) == 256
    assert next_search_users(short, [*done, figures(256, 10.0)]) is None
