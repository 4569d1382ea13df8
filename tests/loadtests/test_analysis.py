"""The figures of a load comparison: the knee rule, merged percentiles, isolation, costs."""

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
    return Window("step", users, 0, 0.0, 10.0, [total], resources)


def test_the_knee_is_the_fastest_step_under_the_p95_bound() -> None:
    rule = settings(p95_bound_ms=200.0)
    under = step(20, 300.0, 150.0)
    architecture = Architecture(
        "direct", "monolith direct", None, {}, {},
        [step(10, 200.0, 50.0), under, step(40, 320.0, 450.0)],
    )  # fmt: skip
    assert analysis.knee(architecture, rule) is under


def test_a_step_with_too_many_errors_is_not_the_knee() -> None:
    rule = settings(p95_bound_ms=200.0, error_bound=0.01)
    calm = step(10, 200.0, 50.0)
    architecture = Architecture(
        "direct", "monolith direct", None, {}, {}, [calm, step(20, 300.0, 60.0, failures=50)]
    )
    assert analysis.knee(architecture, rule) is calm


def test_no_step_under_the_bound_means_no_knee() -> None:
    architecture = Architecture(
        "direct", "monolith direct", None, {}, {}, [step(10, 200.0, 900.0), step(20, 250.0, None)]
    )
    assert analysis.knee(architecture, settings(p95_bound_ms=200.0)) is None


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
        window = analysis.knee(architecture, measured.settings)
        assert window is not None
        cost = analysis.cost(window)
        assert abs(sum(cost.cpu_per_1000_by_role.values()) - cost.cpu_per_1000) < 1e-9  # type: ignore[operator]


def test_a_busy_locust_process_is_a_generator_warning() -> None:
    measured = comparison()
    direct = measured.architecture("direct")
    assert direct is not None
    busy = dataclasses.replace(
        direct.windows[0].resources, generator_busiest_core=0.95, generator_cpu_seconds=0.0
    )
    direct.windows[0] = dataclasses.replace(direct.windows[0], resources=busy)
    warnings = analysis.generator_warnings(measured)
    assert list(warnings) == ["direct"]
    assert "95% of a core" in warnings["direct"][0]


def test_a_generator_using_much_of_the_machine_is_a_warning() -> None:
    measured = comparison()
    direct = measured.architecture("direct")
    assert direct is not None
    window = direct.windows[1]
    heavy = dataclasses.replace(window.resources, generator_cpu_seconds=window.seconds * 0.8)
    direct.windows[1] = dataclasses.replace(window, resources=heavy)
    assert "40% of the machine's 2 cores" in analysis.generator_warnings(measured)["direct"][0]
