"""Polls: creating polls, voting, counting. Domain logic over a Session; no web framework.

In the monolith results are counted live on every read; the extracted polls service will
instead keep a projection updated by vote events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.requests import NewPoll, NewVote
from monolith.models import Poll, PollOption, Vote
from monolith.users.service import signed_in_user
from strangler.plumbing.clock import utcnow
from strangler.plumbing.errors import Conflict, NotFound, invalid


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


def create_poll(db: Session, author_id: int, request: NewPoll) -> Poll:
    signed_in_user(db, author_id)
    poll = Poll(question=request.question, author_id=author_id)
    poll.options = [PollOption(position=i, text=text) for i, text in enumerate(request.options)]
    db.add(poll)
    db.commit()
    return poll


def get_poll(db: Session, poll_id: int) -> Poll:
    poll = db.get(Poll, poll_id)
    if poll is None:
        raise NotFound(f"poll {poll_id} does not exist")
    return poll


def vote(db: Session, user_id: int, poll_id: int, request: NewVote) -> Vote:
    signed_in_user(db, user_id)
    poll = get_poll(db, poll_id)
    if request.option_id not in {option.id for option in poll.options}:
        raise invalid("option_id", f"is not an option of poll {poll_id}")
    already = db.scalar(select(Vote.id).where(Vote.poll_id == poll_id, Vote.user_id == user_id))
    if already is not None:
        raise Conflict(f"you have already voted in poll {poll_id}")
    ballot = Vote(poll_id=poll_id, option_id=request.option_id, user_id=user_id)
    db.add(ballot)
    try:
        db.commit()
    except IntegrityError as error:  # a concurrent vote by the same user won the race
        db.rollback()
        raise Conflict(f"you have already voted in poll {poll_id}") from error
    return ballot


def results(db: Session, poll_id: int) -> Results:
    poll = get_poll(db, poll_id)
    counts = dict(
        db.execute(
            select(Vote.option_id, func.count())
            .where(Vote.poll_id == poll_id)
            .group_by(Vote.option_id)
        ).all()
    )
    options = [OptionCount(o.id, o.text, int(counts.get(o.id, 0))) for o in poll.options]
    return Results(poll.id, poll.question, sum(o.votes for o in options), options, utcnow())
