"""The polls results projection and its static pages, in process, on each backend.

`projection.refresh` and `projection.rebuild` are what the data path calls when votes arrive by
backfill or change capture rather than through the service, so they are specified here against
rows written straight into the polls database, the way those paths write them.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from contract.requests import NewPoll, NewVote
from extracted.polls import projection
from extracted.polls.events import VOTE_CAST, results_consumer
from extracted.polls.models import Poll, PollOption, PollResult, Vote, consumed, outbox
from extracted.polls.pages import ResultsPages
from extracted.polls.service import create_poll, vote
from strangler.datapath.schemas import upgrade
from strangler.events.bus import open_bus
from strangler.events.metrics import EventMetrics
from strangler.events.outbox import record
from strangler.events.relay import Relay
from strangler.events.runner import ConsumerRunner
from strangler.plumbing.database import make_engine
from tests.support.databases import fresh_database


@pytest.fixture
def polls_engine(database_url: str) -> Iterator[Engine]:
    upgrade("polls", database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _copy_poll(session: Session, poll_id: int, options: int, votes: list[int]) -> None:
    """A poll with its options and votes, as a backfill writes them: explicit ids, no events.
    `votes[i]` is the option position the i-th voter chose."""
    session.execute(insert(Poll).values(id=poll_id, question=f"Poll {poll_id}?", author_id=1))
    session.execute(
        insert(PollOption),
        [
            {"id": poll_id * 100 + n, "poll_id": poll_id, "position": n, "text": f"option {n}"}
            for n in range(options)
        ],
    )
    if votes:
        session.execute(
            insert(Vote),
            [
                {"poll_id": poll_id, "option_id": poll_id * 100 + choice, "user_id": user}
                for user, choice in enumerate(votes, start=1)
            ],
        )


def _counts(engine: Engine, poll_id: int) -> tuple[int, list[int]]:
    with Session(engine) as session:
        results = projection.read(session, poll_id)
    assert results is not None
    return results.total, [option.votes for option in results.options]


def _direct_count(engine: Engine, poll_id: int) -> tuple[int, list[int]]:
    with Session(engine) as session:
        poll = session.get_one(Poll, poll_id)
        votes = [
            session.scalar(select(func.count()).where(Vote.option_id == option.id)) or 0
            for option in poll.options
        ]
    return sum(votes), votes


def test_refresh_counts_votes_written_in_the_same_transaction(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 3, [0, 2, 2, 2])
        projection.refresh(session, [1])
        inside = projection.read(session, 1)
        assert inside is not None
        assert [option.votes for option in inside.options] == [1, 0, 3]
    assert _counts(polls_engine, 1) == (4, [1, 0, 3]) == _direct_count(polls_engine, 1)


def test_a_refresh_rolls_back_with_the_votes_it_counted(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [0])
        projection.refresh(session, [1])
    with Session(polls_engine) as session:
        session.begin()
        session.execute(insert(Vote).values(poll_id=1, option_id=101, user_id=99))
        projection.refresh(session, [1])
        session.rollback()
    assert _counts(polls_engine, 1) == (1, [1, 0])


def test_refreshing_again_changes_nothing_but_as_of(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [1, 1])
        projection.refresh(session, [1, 1])
    first = _counts(polls_engine, 1)
    with Session(polls_engine) as session, session.begin():
        projection.refresh(session, [1])
    assert _counts(polls_engine, 1) == first == (2, [0, 2])
    with polls_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PollResult)) == 2


def test_a_poll_never_computed_has_zero_votes_as_of_its_creation(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [0, 0])
    with Session(polls_engine) as session:
        poll = session.get_one(Poll, 1)
        results = projection.read(session, 1)
        assert results is not None
        assert (results.total, results.as_of) == (0, poll.created_at)


def test_the_projection_never_stands_in_the_way_of_deleting_a_poll(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [])
        projection.refresh(session, [1])
    with Session(polls_engine) as session, session.begin():
        session.execute(delete(PollOption).where(PollOption.poll_id == 1))
        session.execute(delete(Poll).where(Poll.id == 1))
    with polls_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PollResult)) == 0


def test_refreshing_unknown_polls_or_none_writes_nothing(polls_engine: Engine) -> None:
    with Session(polls_engine) as session, session.begin():
        projection.refresh(session, [])
        projection.refresh(session, [404])
    with polls_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PollResult)) == 0


def test_upgrading_a_database_with_votes_computes_their_results(database_url: str) -> None:
    upgrade("polls", database_url, "0001")
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            _copy_poll(session, 1, 3, [2, 2, 0])
        upgrade("polls", database_url)
        assert _counts(engine, 1) == (3, [1, 0, 2])
    finally:
        engine.dispose()


def test_rebuild_recomputes_every_poll_chunk_by_chunk(
    polls_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projection, "CHUNK", 2)
    ballots = {1: [0, 1, 1], 2: [], 3: [2], 4: [0] * 5, 5: [1]}
    with Session(polls_engine) as session, session.begin():
        for poll_id, votes in ballots.items():
            _copy_poll(session, poll_id, 3, votes)
    assert projection.rebuild(polls_engine) == 5
    for poll_id in ballots:
        assert _counts(polls_engine, poll_id) == _direct_count(polls_engine, poll_id)
    assert _counts(polls_engine, 4) == (5, [5, 0, 0])


def test_the_rebuild_command_recomputes_every_poll_and_writes_every_page(
    polls_engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [1, 1])
        _copy_poll(session, 2, 3, [])
    folder = tmp_path / "pages"
    environment = {
        **os.environ,
        "POLLS_DATABASE_URL": database_url,
        "POLLS_RESULTS_DIR": str(folder),
    }
    command = [sys.executable, "-m", "extracted.polls.projection", "--rebuild"]
    subprocess.run(command, env=environment, check=True, capture_output=True, timeout=60)
    assert _counts(polls_engine, 1) == (2, [0, 2])
    assert sorted(path.name for path in folder.iterdir()) == ["1.html", "2.html"]


def test_the_projection_command_without_rebuild_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        projection.main([])
    assert exit_.value.code == 2 and "--rebuild" in capsys.readouterr().err


def test_every_poll_gets_one_readable_page(polls_engine: Engine, tmp_path: Path) -> None:
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [1])
        _copy_poll(session, 2, 2, [])
    projection.rebuild(polls_engine)
    pages = ResultsPages(tmp_path / "results")
    assert projection.write_all_pages(polls_engine, pages) == 2
    assert sorted(path.name for path in pages.directory.iterdir()) == ["1.html", "2.html"]
    page = (pages.read(1) or b"").decode()
    assert "option 1: <strong>1</strong>" in page and "1 vote · poll 1" in page
    mode = pages.path(1).stat().st_mode
    assert stat.S_IMODE(mode) == 0o644, "readable by whatever serves the folder"
    assert pages.read(3) is None


def test_a_page_is_replaced_whole(polls_engine: Engine, tmp_path: Path) -> None:
    pages = ResultsPages(tmp_path / "results")
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [0] * 9)
        assert projection.write_pages(session, pages, [1]) == 1
        assert "9 votes" in (pages.read(1) or b"").decode()
        session.execute(insert(Vote).values(poll_id=1, option_id=100, user_id=10))
        projection.write_pages(session, pages, [1])
        [results] = projection.count(session, [session.get_one(Poll, 1)])
    page = (pages.read(1) or b"").decode()
    assert _without_time(page) == _without_time(pages.render(results))
    assert "10 votes" in page and "option 0: <strong>10</strong>" in page
    assert [path.name for path in pages.directory.iterdir()] == ["1.html"], "no temporary file"
    with polls_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PollResult)) == 0, (
            "pages are counted apart from the projection"
        )


def _without_time(page: str) -> str:
    return re.sub(r"<time>[^<]*</time>", "<time></time>", page)


def test_the_results_consumer_recomputes_and_publishes_each_poll_of_a_batch_once(
    polls_engine: Engine, backend: str, tmp_path: Path
) -> None:
    pages = ResultsPages(tmp_path / "results")
    registry = CollectorRegistry()
    consumer = results_consumer(pages, registry)
    with Session(polls_engine, expire_on_commit=False) as session:
        poll = create_poll(session, 1, NewPoll(question="Tea?", options=["Yes", "No"]))
        for voter in (2, 3):
            vote(session, voter, poll.id, NewVote(option_id=poll.options[1].id))
    with fresh_database(backend, tmp_path, "bus") as bus_url:
        bus = open_bus(bus_url)
        try:
            metrics = EventMetrics()
            Relay("polls", polls_engine, bus, 100, metrics).run_once()
            runner = ConsumerRunner(consumer, polls_engine, bus, metrics)
            assert runner.run_once() == (3, False)
            assert _counts(polls_engine, poll.id) == (2, [0, 2])
            assert "No: <strong>2</strong>" in (pages.read(poll.id) or b"").decode()
            assert registry.get_sample_value("poll_pages_written_total") == 1
            delays = metrics.registry.get_sample_value(
                "event_delay_seconds_count", {"consumer": "polls-results"}
            )
            assert delays == 3
        finally:
            bus.close()


def test_a_poison_polls_event_is_parked_and_the_votes_behind_it_are_counted(
    polls_engine: Engine, backend: str, tmp_path: Path
) -> None:
    pages = ResultsPages(tmp_path / "results")
    with Session(polls_engine, expire_on_commit=False) as session:
        poll = create_poll(session, 1, NewPoll(question="Tea?", options=["Yes", "No"]))
        record(session, outbox, VOTE_CAST, "not-a-poll", {"id": 1})
        session.commit()
        vote(session, 2, poll.id, NewVote(option_id=poll.options[0].id))
    with fresh_database(backend, tmp_path, "bus") as bus_url:
        bus = open_bus(bus_url)
        try:
            Relay("polls", polls_engine, bus, 100, EventMetrics()).run_once()
            consumer = results_consumer(pages, CollectorRegistry())
            runner = ConsumerRunner(consumer, polls_engine, bus, EventMetrics(), max_attempts=2)
            assert runner.run_once() == (1, True)  # the poll; then the poison fails once
            assert runner.run_once() == (2, False)  # parked on its second attempt; the vote
        finally:
            bus.close()
    assert _counts(polls_engine, poll.id) == (1, [1, 0])
    with polls_engine.connect() as connection:
        [parked] = connection.execute(select(consumed.failed)).all()
    assert (parked.event_id, parked.attempts) == ("polls:2", 2)
    assert parked.parked_at is not None and "not-a-poll" in parked.error


def test_replaying_the_results_consumer_recomputes_polls_that_have_no_events(
    polls_engine: Engine, backend: str, tmp_path: Path
) -> None:
    pages = ResultsPages(tmp_path / "results")
    with Session(polls_engine) as session, session.begin():
        _copy_poll(session, 1, 2, [0, 0, 1])  # copied from the monolith: no events
    with fresh_database(backend, tmp_path, "bus") as bus_url:
        bus = open_bus(bus_url)
        try:
            consumer = results_consumer(pages, CollectorRegistry())
            ConsumerRunner(consumer, polls_engine, bus, EventMetrics()).replay()
        finally:
            bus.close()
    assert _counts(polls_engine, 1) == (3, [2, 1]) == _direct_count(polls_engine, 1)
    assert "3 votes · poll 1" in (pages.read(1) or b"").decode()
