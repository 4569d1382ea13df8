"""Polls: creating polls, voting, reading results. Domain logic over a Session; no web framework.

Behaves as the monolith's polls context with one deliberate difference: the voter (or author)
is whoever the signed token names. This database has no users table, so a token for a user
the users service no longer knows is accepted here (the monolith answers 401). Tokens are
short-lived and only the users service issues them, so the window is the token's lifetime.
Each change records its event in the outbox within the change's own transaction; results are
read from the projection those events keep current (`projection`), never counted on a read.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.requests import NewPoll, NewVote
from extracted.polls import events, projection
from extracted.polls.models import Poll, PollOption, Vote, outbox
from extracted.polls.presenters import OptionView, PollView, Results
from strangler.events.outbox import record
from strangler.plumbing.errors import Conflict, NotFound, invalid


def create_poll(db: Session, author_id: int, request: NewPoll) -> Poll:
    poll = Poll(question=request.question, author_id=author_id)
    poll.options = [PollOption(position=i, text=text) for i, text in enumerate(request.options)]
    db.add(poll)
    db.flush()  # the ids and created_at the event carries
    record(db, outbox, events.POLL_CREATED, poll.id, dict(events.poll_created(poll)))
    db.commit()
    return poll


# Reads are Core statements built once, on a plain connection: no Session, no identity map,
# no statement built per request (docs/services.md, "making a service fast").
_POLL = (
    select(
        Poll.question,
        Poll.author_id,
        Poll.created_at,
        PollOption.id.label("option_id"),
        PollOption.text,
    )
    .outerjoin(PollOption, PollOption.poll_id == Poll.id)
    .where(Poll.id == bindparam("poll_id"))
    .order_by(PollOption.position)
)


def get_poll(db: Connection, poll_id: int) -> PollView:
    rows = db.execute(_POLL, {"poll_id": poll_id}).all()
    if not rows:
        raise NotFound(f"poll {poll_id} does not exist")
    options = [OptionView(row.option_id, row.text) for row in rows if row.option_id is not None]
    first = rows[0]
    return PollView(poll_id, first.question, options, first.author_id, first.created_at)


def vote(db: Session, user_id: int, poll_id: int, request: NewVote) -> Vote:
    poll = db.get(Poll, poll_id)
    if poll is None:
        raise NotFound(f"poll {poll_id} does not exist")
    if request.option_id not in {option.id for option in poll.options}:
        raise invalid("option_id", f"is not an option of poll {poll_id}")
    already = db.scalar(select(Vote.id).where(Vote.poll_id == poll_id, Vote.user_id == user_id))
    if already is not None:
        raise Conflict(f"you have already voted in poll {poll_id}")
    ballot = Vote(poll_id=poll_id, option_id=request.option_id, user_id=user_id)
    db.add(ballot)
    try:
        db.flush()
        record(db, outbox, events.VOTE_CAST, poll_id, dict(events.vote_cast(ballot)))
        db.commit()
    except IntegrityError as error:  # a concurrent vote by the same user won the race
        db.rollback()
        raise Conflict(f"you have already voted in poll {poll_id}") from error
    return ballot


def results(db: Connection | Session, poll_id: int) -> Results:
    """The poll's results as the projection last computed them (may trail votes briefly)."""
    found = projection.read(db, poll_id)
    if found is None:
        raise NotFound(f"poll {poll_id} does not exist")
    return found
