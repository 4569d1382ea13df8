"""Which stage the system just measured moves its data on to (the comparison's in-place move)."""

from __future__ import annotations

from strangler.compare.comparison import Candidate, _next_stage, candidates


def test_each_stage_moves_on_to_the_next_and_the_monolith_alone_moves_nothing() -> None:
    chosen = candidates()
    moves = {
        measured.key: _next_stage(measured, following)
        for measured, following in zip(chosen, [*chosen[1:], None], strict=True)
    }
    assert moves == {
        "direct": None, "stage-0": 1, "stage-1": 2, "stage-2": 3, "stage-3": 4, "stage-4": 5,
        "stage-5": None,
    }  # fmt: skip


def test_a_chosen_subset_moves_forward_only() -> None:
    two, four = Candidate("stage-2", "", 2), Candidate("stage-4", "", 4)
    assert _next_stage(two, four) == 4
    assert _next_stage(four, two) is None
    assert _next_stage(Candidate("direct", "", 0, direct=True), two) is None
