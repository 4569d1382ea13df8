"""The polls results projection: each option's vote count, recomputed from the `votes` table.

The read side of polls. `refresh` recomputes the named polls inside the caller's transaction:
the results consumer calls it for each `polls.*` event, and the data path calls it in the
transaction that applies copied or captured votes, so results are right whichever way the votes
arrived. Recomputing from `votes` (never incrementing) makes a redelivered or replayed event
harmless. `read` answers results from the projection. A poll with no projection rows yet (just
created, its event still on the way) has no counted votes: every option at 0, as of the poll's
creation. `write_pages` and `write_all_pages` publish the static results pages from the
projection (through `pages.ResultsPages`, which owns the files).

    POLLS_DATABASE_URL=... POLLS_RESULTS_DIR=... python -m extracted.polls.projection --rebuild

recomputes every poll, then writes every page: what a cutover runs before routes flip. This
module never writes polls, options or votes, and knows no HTTP.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Engine, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from extracted.polls.models import Poll, PollOption, PollResult, Vote
from extracted.polls.pages import ResultsPages
from extracted.polls.settings import ResultsSettings
from plumbing.clock import utcnow
from plumbing.database import make_engine
from plumbing.logs import configure_logging, get_logger

log = get_logger("projection")

CHUNK = 500  # polls per statement (and per transaction in `rebuild`)


@dataclass(frozen=True)
class OptionCount:
    id: int
    text: str
    votes: int


@dataclass(frozen=True)
class Results:
    poll_id: int
    question: str
    total: int
    options: list[OptionCount]
    as_of: datetime


def refresh(session: Session, poll_ids: Iterable[int]) -> None:
    """Recompute the projection rows of `poll_ids` from `votes`, in the caller's transaction.

    Two refreshes of one poll never interleave: PostgreSQL locks the poll rows first (a lock
    that does not block votes being inserted), and on SQLite the first statement is a write,
    which holds the database's write lock until the caller commits. So the count that commits
    last is never older than one committed before it.
    """
    ordered = sorted(set(poll_ids))
    for chunk in (ordered[start : start + CHUNK] for start in range(0, len(ordered), CHUNK)):
        session.execute(
            select(Poll.id)
            .where(Poll.id.in_(chunk))
            .order_by(Poll.id)
            .with_for_update(key_share=True)
        )
        session.execute(delete(PollResult).where(PollResult.poll_id.in_(chunk)))
        counted = (
            select(
                PollOption.poll_id,
                PollOption.id,
                func.count(Vote.id),
                literal(utcnow(), DateTime()),
            )
            .select_from(PollOption)
            .outerjoin(Vote, Vote.option_id == PollOption.id)
            .where(PollOption.poll_id.in_(chunk))
            .group_by(PollOption.poll_id, PollOption.id)
        )
        session.execute(
            insert(PollResult).from_select(["poll_id", "option_id", "votes", "as_of"], counted)
        )


def refresh_all(session: Session) -> list[int]:
    """Recompute every poll in the caller's transaction (a consumer's replay); return the ids."""
    poll_ids = list(session.scalars(select(Poll.id).order_by(Poll.id)))
    refresh(session, poll_ids)
    return poll_ids


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


def read(session: Session, poll: Poll) -> Results:
    """The results of `poll` as last computed (zero counts as of its creation if never)."""
    rows = session.execute(
        select(PollResult.option_id, PollResult.votes, PollResult.as_of).where(
            PollResult.poll_id == poll.id
        )
    ).all()
    counts = {row.option_id: row.votes for row in rows}
    options = [OptionCount(o.id, o.text, counts.get(o.id, 0)) for o in poll.options]
    as_of = rows[0].as_of if rows else poll.created_at
    return Results(poll.id, poll.question, sum(o.votes for o in options), options, as_of)


def write_pages(session: Session, pages: ResultsPages, poll_ids: Iterable[int]) -> int:
    """Write the results page of each of `poll_ids` from the projection; return how many."""
    polls = session.scalars(select(Poll).where(Poll.id.in_(set(poll_ids)))).all()
    for poll in polls:
        pages.write(read(session, poll))
    return len(polls)


def write_all_pages(engine: Engine, pages: ResultsPages) -> int:
    """Write every poll's results page from the projection; return how many."""
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
