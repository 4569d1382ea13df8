"""The verdict: at most five sentences, each with its number, each computed from the figures, so
a run the monolith wins says so and a run the split wins says so."""

from __future__ import annotations

import re

from strangler.compare import analysis
from strangler.compare.verdict import details, verdict
from tests.loadtests.figures import comparison


def numbers(sentence: str) -> list[str]:
    return re.findall(r"\d[\d,.]*", sentence)


def test_the_verdict_is_at_most_five_sentences_each_with_a_number() -> None:
    found = verdict(comparison())
    assert 1 <= len(found) <= 5
    for sentence in found:
        assert numbers(sentence), sentence
        assert sentence.endswith(".")


def test_a_run_the_monolith_wins_says_so_with_the_ratio() -> None:
    measured = comparison()  # the split: less capacity, slower
    first = verdict(measured)[0]
    direct, split = measured.architecture("direct"), measured.architecture("stage-5")
    assert direct is not None and split is not None
    ratio = (
        analysis.limit(split, measured.settings).rate  # type: ignore[operator, union-attr]
        / analysis.limit(direct, measured.settings).rate  # type: ignore[union-attr]
    )
    assert ratio < 1
    assert f"serves {ratio:.2f}x the throughput of monolith direct" in first
    assert "the monolith wins on throughput" in first
    assert "slower in the split" in verdict(measured)[2]


def test_a_run_the_split_wins_says_so() -> None:
    measured = comparison(split_capacity=600.0, split_slowdown=0.7)
    found = verdict(measured)
    assert "the split wins on throughput" in found[0]
    assert "the monolith wins" not in " ".join(found)
    assert "faster in the split" in found[2]


def test_the_isolation_sentence_follows_the_measured_ratios() -> None:
    measured = comparison()
    sentence = next(s for s in verdict(measured) if s.startswith("Under a hot spot"))
    direct = analysis.isolation(measured.architectures[0], measured.settings)
    split = analysis.isolation(measured.architectures[2], measured.settings)
    assert direct is not None and split is not None
    assert f"x{split.ratio:.2f} in stage 5: full split" in sentence
    assert f"against x{direct.ratio:.2f} in monolith direct" in sentence
    assert "the split isolates the hot spot better" in sentence


def test_where_the_cpu_goes_names_the_roles_and_the_background() -> None:
    sentence = next(s for s in verdict(comparison()) if s.startswith("At its limit"))
    assert "30% in the proxy" in sentence and "5% in the events" in sentence
    assert "with no traffic its polling alone keeps 0.02 cores busy against 0.00" in sentence


def test_a_limit_not_reached_is_a_lower_bound_in_the_verdict() -> None:
    measured = comparison(split_capacity=600.0, split_slowdown=0.7)
    assert "at least" in verdict(measured)[0] and "limit not reached" in verdict(measured)[0]


def test_the_details_state_every_architectures_limit() -> None:
    measured = comparison()
    limits = details(measured)[0]
    for architecture in measured.architectures:
        found = analysis.limit(architecture, measured.settings)
        assert found is not None
        assert f"{architecture.title} {found.text()}" in limits


def test_one_architecture_alone_gets_its_limit_only() -> None:
    measured = comparison()
    measured.architectures = measured.architectures[:1]
    assert verdict(measured) == ["Only monolith direct was measured: its limit is 240 req/s."]


def test_an_idle_machine_at_the_limit_is_not_blamed_on_the_architecture_when_shared() -> None:
    quiet = comparison()
    last = verdict(quiet)[-1]
    assert "the machine was not CPU-bound" in last
    busy = comparison()
    busy.machine["load_average"] = [13.8, 9.0, 5.0]
    last = verdict(busy)[-1]
    assert "other work shared the machine (load average 13.8 at the start)" in last
    assert "not CPU-bound" not in last


def test_a_ratio_cpu_cannot_explain_says_so_in_the_first_sentence() -> None:
    agreeing = verdict(comparison())[0]
    assert "CPU alone predicts" not in agreeing  # the synthetic split is CPU-bound
    measured = comparison(split_capacity=600.0, split_slowdown=1.5)  # faster, not cheaper
    first = verdict(measured)[0]
    model = next(m for m in analysis.predictions(measured) if m.architecture == "stage-5")
    assert model.is_flagged
    assert f"CPU alone predicts {model.predicted:.2f}x" in first


def test_the_hot_spot_is_named_as_the_workload_names_it() -> None:
    """The forum's hot users search; a bookshelf's list books: no sentence may assume either."""
    forum = " ".join(verdict(comparison(hot_name="searchers")) + details(comparison()))
    assert "10 searchers with no think time on GET /api/search" in forum
    bookshelf = comparison(hot_name="book-list readers", hot_endpoint="GET /api/threads")
    said = " ".join(verdict(bookshelf) + details(bookshelf))
    assert "10 book-list readers with no think time on GET /api/threads" in said
    assert "when 10 book-list readers loaded GET /api/threads" in said
    assert "search" not in said.lower()


def test_a_hop_latency_is_stated_with_the_throughput_ratio() -> None:
    assert "every hop" not in verdict(comparison())[0]
    first = verdict(comparison(hop_latency_ms=0.5))[0]
    assert first.startswith(
        "On the same 2 cores with 4 server workers each and 0.5 ms added to every hop between "
        "processes, stage 5: full split serves"
    )


def test_the_database_server_is_its_own_share_never_the_application_s() -> None:
    measured = comparison()
    split = measured.architecture("stage-5")
    assert split is not None
    for window in split.windows:  # the forum's share spent by its PostgreSQL server instead
        roles = window.resources.cpu_seconds_by_role
        if "forum" in roles:  # not in the background window: only polling there
            roles["database"] = roles.pop("forum")
    sentence = next(s for s in verdict(measured) if s.startswith("At its limit"))
    assert "35% in the application's processes, 25% in the database server" in sentence
    assert analysis.role_capacity(split, "database") is None  # a process per connection


def test_the_aws_emulator_is_its_own_share_never_the_application_s() -> None:
    measured = comparison()
    split = measured.architecture("stage-5")
    assert split is not None
    for window in split.windows:  # polls as functions: its share split with the emulator
        roles = window.resources.cpu_seconds_by_role
        if "polls" in roles:
            roles["functions"] = roles.pop("polls") / 2
            roles["emulator"] = roles["functions"]
    sentence = next(s for s in verdict(measured) if s.startswith("At its limit"))
    assert "5% in the AWS emulator (moto, not AWS)" in sentence
    assert "55% in the application's processes" in sentence  # the functions are the application


def test_a_function_context_s_processes_have_roles_of_their_own() -> None:
    from strangler.compare.comparison import member_role, role_of

    assert role_of("aws-emulator") == "emulator"
    assert role_of("polls-stream-poller") == "functions"
    assert role_of("polls-sync") == "sync" and role_of("polls") == "polls"
    worker = ["/usr/bin/python3", "-P", "/x/strangler_proxy/function_worker.py", "a.b:handler"]
    assert member_role("proxy", worker) == "functions"
    assert member_role("proxy", ["python", "-m", "strangler_proxy"]) == "proxy"
    assert member_role("monolith", worker) == "monolith"
