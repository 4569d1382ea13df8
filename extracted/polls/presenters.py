"""What a read of polls shows, wherever the polls are kept, and its body in the contract's form.

A poll with its options in order (`PollView`), a poll's results (`Results`), and the JSON bodies
of both (`present_poll`, `present_results`, docs/openapi.yaml). The SQL service (`api`,
`service`, `projection`) and the polls function over DynamoDB (`serverless`) build and present
the same values. Plain values and dicts: this module must never import SQLAlchemy or a web
framework, so a function's cold start does not pay for the SQL side it never uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from strangler.plumbing.clock import to_iso

if TYPE_CHECKING:
    from extracted.polls.models import Poll


class OptionView(NamedTuple):
    id: int
    text: str


class PollView(NamedTuple):
    """A poll as a read shows it, its options in order."""

    id: int
    question: str
    options: list[OptionView]
    author_id: int
    created_at: datetime


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


def present_poll(poll: Poll | PollView) -> dict[str, Any]:
    return {
        "id": poll.id,
        "question": poll.question,
        "options": [{"id": option.id, "text": option.text} for option in poll.options],
        "author_id": poll.author_id,
        "created_at": to_iso(poll.created_at),
    }


def present_results(results: Results) -> dict[str, Any]:
    return {
        "poll_id": results.poll_id,
        "total": results.total,
        "options": [{"id": o.id, "text": o.text, "votes": o.votes} for o in results.options],
        "as_of": to_iso(results.as_of),
    }
