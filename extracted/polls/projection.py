"""The polls results projection: each option's vote count, recomputed from the `votes` table.

The read side of polls. `refresh` recomputes the named polls inside the caller's transaction:
the results consumer calls it for the polls a batch of events names, and the data path calls it
in the transaction that applies copied or captured votes, so results are right whichever way
the votes arrived. Recomputing from `votes` (never incrementing) makes a redelivered or
replayed event harmless. `read` answers results from the projection. A poll with no projection
rows yet (just created, its event still on the way) has no counted votes: every option at 0, as
of the poll's creation. `write_pages` and `write_all_pages` publish the static results pages,
counted as they are written (through `pages.ResultsPages`, which owns the files).

    POLLS_DATABASE_URL=... POLLS_RESULTS_DIR=... python -m extracted.polls.projection --rebuild

recomputes every poll, then writes every page: what a cutover runs before routes flip. This
module never writes polls, options or votes, and knows no HTTP.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from extracted.polls.models import Poll, PollOption, PollResult, Vote
from extracted.polls.pages import ResultsPages
from extracted.polls.presenters import OptionCount, Results
from extracted.polls.settings import ResultsSettings
from strangler.plumbing.clock import utcnow
from strangler.plumbing.database import make_engine
from strangler.plumbing.logs import configure_logging, get_logger

log = get_logger("projection")

CHUNK = 500  # polls per statement (and per transaction in `rebuild`)


def refresh(session: Session, poll_ids: Iterable[int]) -> None:
    """Recompute the projection rows of `poll_ids` from `votes`, in the caller's transaction.

    Two refreshes of one poll never interleave: PostgreSQL locks the poll rows first (a lock
    that does not block votes being inserted), and on SQLite the first statement is a write,
    which holds the database's write lock until the caller commits. So the count that commits
    last is never older than one committed before it.
    """
    for chunk in _chunks(poll_ids):
        session.execute(
            select(Poll.id)
            .where(Poll.id.in_(chunk))
            .order_by(Poll.id)
            .with_for_update(key_share=True)
        )
        session.execute(delete(PollResult).where(PollResult.poll_id.in_(chunk)))
        session.execute(
            insert(PollResult).from_select(
                ["poll_id", "option_id", "votes", "as_of"], _counted(chunk, utcnow())
            )
        )


def _chunks(poll_ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(poll_ids))
    return (ordered[start : start + CHUNK] for start in range(0, len(ordered), CHUNK))


def _counted(poll_ids: list[int], as_of: datetime) -> Select[Any]:
    """`(poll_id, option_id, votes, as_of)` of each option of `poll_ids`, counted from votes."""
    # A count per option (a range of ix_votes_option_id), not a join and a GROUP BY: on SQLite
    # that is 15x faster for a poll with 100,000 votes (docs/events.md).
    votes = (
        select(func.count())
        .where(Vote.option_id == PollOption.id)
        .correlate(PollOption)
        .scalar_subquery()
    )
    return select(PollOption.poll_id, PollOption.id, votes, literal(as_of, DateTime())).where(
        PollOption.poll_id.in_(poll_ids)
    )


def every_poll_id(session: Session) -> list[int]:
    return list(session.scalars(select(Poll.id).order_by(Poll.id)))


def rebuild(engine: Engine) -> int:
    """Recompute every poll's projection, a chunk of polls per transaction; return how many."""
    return _each_chunk(engine, refresh)


def _each_chunk(engine: Engine, work: Callable[[Session, list[int]], object]) -> int:
    """Run `work` on every poll id, a key-ordered chunk per transaction; return how many."""
    count, after = 0, 0
    while True:
        with Session(engine) as session, session.begin():
            poll_ids = list(
                session.scalars(
                    select(Poll.id).where(Poll.id > after).order_by(Poll.id).limit(CHUNK)
                )
            )
            if not poll_ids:
                return count
            work(session, poll_ids)
        count += len(poll_ids)
        after = poll_ids[-1]


# One Core statement, built once: the poll, its options in order and their projection rows.
_PROJECTED = (
    select(
        Poll.question,
        Poll.created_at,
        PollOption.id.label("option_id"),
        PollOption.text,
        PollResult.votes,
        PollResult.as_of,
    )
    .outerjoin(PollOption, PollOption.poll_id == Poll.id)
    .outerjoin(
        PollResult, (PollResult.poll_id == Poll.id) & (PollResult.option_id == PollOption.id)
    )
    .where(Poll.id == bindparam("poll_id"))
    .order_by(PollOption.position)
)


def read(db: Connection | Session, poll_id: int) -> Results | None:
    """The results of a poll as last computed (zero counts as of its creation if never), or
    None if there is no such poll. One query; a plain connection is the fast way to run it."""
    rows = db.execute(_PROJECTED, {"poll_id": poll_id}).all()
    if not rows:
        return None
    options = [
        OptionCount(row.option_id, row.text, row.votes or 0)
        for row in rows
        if row.option_id is not None
    ]
    as_of = next((row.as_of for row in rows if row.as_of is not None), rows[0].created_at)
    return Results(poll_id, rows[0].question, sum(o.votes for o in options), options, as_of)


def count(session: Session, polls: Sequence[Poll]) -> list[Results]:
    """The results of `polls` counted from `votes` now, leaving the projection alone."""
    now = utcnow()
    counts: dict[int, int] = {}
    for chunk in _chunks(poll.id for poll in polls):
        counts |= {row[1]: row[2] for row in session.execute(_counted(chunk, now))}
    return [_results(poll, counts, now) for poll in polls]


def _results(poll: Poll, counts: dict[int, int], as_of: datetime) -> Results:
    options = [OptionCount(o.id, o.text, counts.get(o.id, 0)) for o in poll.options]
    return Results(poll.id, poll.question, sum(o.votes for o in options), options, as_of)


def write_pages(session: Session, pages: ResultsPages, poll_ids: Iterable[int]) -> int:
    """Write the results page of each of `poll_ids`, counted now; return how many.

    It only reads, so the results consumer writes the pages of a batch before `refresh` takes
    the write lock: on SQLite, file I/O never holds up votes. The pages show at least the votes
    whose events are in the batch; a vote committed since has its own event to come.
    """
    written = 0
    for chunk in _chunks(poll_ids):
        polls = session.scalars(select(Poll).where(Poll.id.in_(chunk)).order_by(Poll.id)).all()
        for results in count(session, polls):
            pages.write(results)
        written += len(polls)
    return written


def write_all_pages(engine: Engine, pages: ResultsPages) -> int:
    """Write every poll's results page (counted as it is written); return how many."""
    return _each_chunk(engine, lambda session, poll_ids: write_pages(session, pages, poll_ids))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Recompute the polls results projection.")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        required=True,
        help="recompute every poll's results from its votes, then write every results page",
    )
    parser.parse_args(argv)
    settings = ResultsSettings()
    configure_logging("polls-projection", settings.log_level)
    engine = make_engine(settings.database_url)
    try:
        polls = rebuild(engine)
        pages = write_all_pages(engine, ResultsPages(settings.results_dir))
        log.info("results rebuilt", polls=polls, pages=pages)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
