"""The figures of a load comparison: the limit rule, merged percentiles, isolation, costs,
the CPU-additive prediction."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as strategy

from strangler.compare import analysis
from strangler.compare.results import AGGREGATED, Architecture, Endpoint, Resources, Window
from tests.loadtests.figures import SEARCH, comparison, percentile, settings

histograms = strategy.dictionaries(
    strategy.integers(min_value=0, max_value=5000),
    strategy.integers(min_value=1, max_value=50),
    min_size=1,
    max_size=30,
)


def step(users: int, rate: float, p95: float | None, failures: int = 0) -> Window:
    total = Endpoint(AGGREGATED, 1000, failures, rate, 10.0, p95, p95)
    resources = Resources(1.0, {"monolith": 1.0}, 100.0, 0.1, 0.1)
    return Window("search", users, 0, 0.0, 10.0, [total], resources)


def searched(*steps: Window) -> Architecture:
    return Architecture("direct", "monolith direct", None, {}, {}, list(steps))


def test_the_limit_is_the_last_step_under_the_bounds_before_one_breaks_them() -> None:
    rule = settings(p95_bound_ms=200.0)
    under = step(20, 300.0, 150.0)
    found = analysis.limit(
        searched(step(10, 200.0, 50.0), under, step(40, 320.0, 450.0), step(80, 330.0, 90.0)),
        rule,
    )
    assert found is not None and found.window is under and found.is_reached
    assert found.broken is not None and found.broken.users == 40
    assert found.text() == "300 req/s"


def test_where_more_users_served_fewer_requests_the_faster_step_is_the_limit() -> None:
    fast = step(4, 244.0, 81.0)
    found = analysis.limit(
        searched(fast, step(10, 102.0, 240.0), step(15, 105.0, 340.0)), settings(p95_bound_ms=250.0)
    )
    assert found is not None and found.window is fast and found.is_reached
    assert found.broken is not None and found.broken.users == 15


def test_a_step_with_too_many_errors_breaks_the_bounds() -> None:
    rule = settings(p95_bound_ms=200.0, error_bound=0.01)
    calm = step(10, 200.0, 50.0)
    found = analysis.limit(searched(calm, step(20, 300.0, 60.0, failures=50)), rule)
    assert found is not None and found.window is calm and found.is_reached


def test_a_search_that_never_broke_a_bound_says_the_limit_was_not_reached() -> None:
    found = analysis.limit(searched(step(10, 200.0, 50.0), step(40, 412.0, 90.0)), settings())
    assert found is not None and not found.is_reached
    assert found.rate == 412.0
    assert found.text() == "limit not reached at 412 req/s"


def test_a_first_step_over_the_bound_means_no_limit() -> None:
    found = analysis.limit(
        searched(step(10, 200.0, 900.0), step(20, 250.0, None)), settings(p95_bound_ms=200.0)
    )
    assert found is not None and found.window is None and found.rate is None
    assert "the first, 10 users, broke them" in found.text()


def test_no_search_step_means_no_limit_at_all() -> None:
    assert analysis.limit(searched(), settings()) is None


def test_the_cpu_additive_prediction_is_app_over_everything_and_flags_a_disagreement() -> None:
    measured = comparison()
    found = {found.architecture: found for found in analysis.predictions(measured)}
    assert found["direct"].predicted == 1.0 and found["direct"].measured == 1.0
    split = found["stage-5"]
    total = split.app_ms + split.proxy_ms + split.hops_ms
    assert abs(split.predicted - split.app_ms / total) < 1e-12
    assert not split.is_flagged  # the synthetic split is CPU-bound: model and measure agree
    far = dataclasses.replace(split, measured=split.predicted * 2)
    assert far.is_flagged


def test_no_prediction_without_the_monolith_alone() -> None:
    measured = comparison()
    measured.architectures = measured.architectures[1:]
    assert analysis.predictions(measured) == []


def test_background_cpu_is_the_idle_window() -> None:
    measured = comparison()
    split = measured.architecture("stage-5")
    assert split is not None and split.idle is not None
    found = analysis.background(split)
    assert found is not None and found.cpu_per_1000 is None
    assert found.cores_by_role == {"events": 0.01, "sync": 0.01}


@examples(max_examples=50, deadline=None)  # a shared machine: timing says nothing here
@given(strategy.lists(histograms, min_size=1, max_size=4), strategy.sampled_from([0.5, 0.95, 0.99]))
def test_merged_percentiles_match_a_brute_force_count(
    parts: list[dict[int, int]], quantile: float
) -> None:
    merged: dict[int, int] = {}
    for histogram in parts:
        for time, count in histogram.items():
            merged[time] = merged.get(time, 0) + count
    assert analysis.merged_percentile(parts, quantile) == percentile(merged, quantile)


def test_one_endpoints_merged_p95_follows_locusts_rule() -> None:
    # locust's calculate_response_time_percentile: the time at position int(100 * 0.95) = 95
    # of the sorted times (positions 90..98 are 90 ms); importing locust here would patch ssl
    histogram = {12: 40, 15: 30, 40: 20, 90: 9, 300: 1}
    assert analysis.merged_percentile([histogram], 0.95) == 90
    assert analysis.merged_percentile([histogram], 0.99) == 300


def test_no_histogram_has_no_percentile() -> None:
    assert analysis.merged_percentile([{}, {}], 0.95) is None


def test_isolation_compares_the_other_endpoints_without_and_with_the_hot_load() -> None:
    measured = comparison()
    split = measured.architecture("stage-5")
    assert split is not None
    found = analysis.isolation(split, measured.settings)
    assert found is not None
    assert SEARCH not in found.per_endpoint
    assert set(found.per_endpoint) == {
        "GET /api/threads", "GET /api/threads/{id}", "POST /api/polls/{id}/votes"
    }  # fmt: skip
    assert found.ratio == found.others_hot_p95_ms / found.others_reference_p95_ms  # type: ignore[operator]


def test_the_split_isolates_the_hot_search_better_than_the_monolith() -> None:
    measured = comparison()
    ratios = {
        architecture.key: analysis.isolation(architecture, measured.settings).ratio  # type: ignore[union-attr]
        for architecture in measured.architectures
    }
    assert ratios["stage-5"] < ratios["direct"]  # type: ignore[operator]


def test_cpu_per_1000_requests_by_role_adds_up_to_the_whole() -> None:
    measured = comparison()
    for architecture in measured.architectures:
        window = analysis.limit_window(architecture, measured.settings)
        assert window is not None
        cost = analysis.cost(window)
        assert abs(sum(cost.cpu_per_1000_by_role.values()) - cost.cpu_per_1000) < 1e-9  # type: ignore[operator]


def test_a_busy_locust_process_is_a_generator_warning() -> None:
    measured = comparison()
    direct = measured.architecture("direct")
    assert direct is not None
    busy = dataclasses.replace(
        direct.windows[1].resources, generator_busiest_core=0.95, generator_cpu_seconds=0.0
    )
    direct.windows[1] = dataclasses.replace(direct.windows[1], resources=busy)
    warnings = analysis.generator_warnings(measured)
    assert list(warnings) == ["direct"]
    assert "95% of a core" in warnings["direct"][0]


def test_a_generator_using_much_of_the_machine_is_a_warning() -> None:
    measured = comparison()
    direct = measured.architecture("direct")
    assert direct is not None
    window = direct.windows[2]
    heavy = dataclasses.replace(window.resources, generator_cpu_seconds=window.seconds * 0.8)
    direct.windows[2] = dataclasses.replace(window, resources=heavy)
    assert "40% of the machine's 2 cores" in analysis.generator_warnings(measured)["direct"][0]
