"""Specification: the polls service's results are right after backfill and after every sync.

Votes copied by the backfill or applied by the sync refresh the results projection in the same
transaction, so the real polls service answers each poll's counts exactly as the monolith's
votes say; the pre-flip hook rebuilds the projection and writes every static results page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from strangler.datapath import apply, backfill
from strangler.datapath.contexts import Owner
from strangler.datapath.link import Link
from tests.support.servers import running_service


def _monolith_counts(link: Link) -> dict[int, Counter[int]]:
    counts: dict[int, Counter[int]] = {}
    with link.monolith.connect() as connection:
        for poll, option in connection.execute(text("SELECT poll_id, option_id FROM votes")):
            counts.setdefault(poll, Counter())[option] += 1
        polls = connection.scalars(text("SELECT id FROM polls")).all()
    return {poll: counts.get(poll, Counter()) for poll in polls}


def _assert_results_match(service: str, link: Link) -> None:
    with httpx.Client(timeout=10) as client:
        for poll, counted in _monolith_counts(link).items():
            results = client.get(f"{service}/api/polls/{poll}/results").json()
            assert {o["id"]: o["votes"] for o in results["options"] if o["votes"]} == dict(counted)
            assert results["total"] == sum(counted.values())


def _vote_and_unvote(link: Link) -> None:
    with link.monolith.begin() as connection:
        for poll in (1, 2, 3):
            voters = set(
                connection.scalars(
                    text("SELECT user_id FROM votes WHERE poll_id = :p"), {"p": poll}
                )
            )
            option = connection.scalar(
                text("SELECT min(id) FROM poll_options WHERE poll_id = :p"), {"p": poll}
            )
            for user in [user for user in range(1, 31) if user not in voters][:3]:
                connection.execute(
                    text("INSERT INTO votes (poll_id, option_id, user_id, created_at)"
                         " VALUES (:p, :o, :u, '2025-07-01 10:00:00')"),
                    {"p": poll, "o": option, "u": user},
                )  # fmt: skip
        connection.execute(
            text("DELETE FROM votes WHERE id = (SELECT max(id) FROM votes WHERE poll_id = 4)")
        )


def test_results_are_right_after_the_backfill_and_after_each_synced_vote(
    databases: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = tmp_path / "pages"
    # Where the service serves its pages wins over this process's environment.
    monkeypatch.setenv("POLLS_RESULTS_DIR", str(tmp_path / "not-here"))
    settings = {"POLLS_RESULTS_DIR": str(pages)}
    with Link.open("polls", databases("monolith"), databases("polls"), settings) as link:
        backfill.backfill(link, chunk_rows=40)
        url = link.service.url.render_as_string(hide_password=False)
        with running_service("polls", url, tmp_path) as service:
            _assert_results_match(service, link)
            _vote_and_unvote(link)
            apply.drain(link, link.context.directions(Owner.MONOLITH))
            _assert_results_match(service, link)
        assert link.context.before_flip is not None
        link.context.before_flip(link.service, link.service_settings)
        counts = _monolith_counts(link)
    assert sorted(int(page.stem) for page in pages.glob("*.html")) == sorted(counts)
    assert not (tmp_path / "not-here").exists()
    total = sum(counts[1].values())
    assert f'<p class="meta">{total} votes · poll 1 ·' in (pages / "1.html").read_text()
