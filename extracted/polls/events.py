"""The events the polls service publishes (through its outbox) and their payloads.

It consumes none yet: votes trust the signed token instead of a replica of users (see the
package docstring). Consumers and what they read:
- `polls.poll_created`: the results projection (the poll's question and options, so it can
  show zero counts before any vote) and the reverse feed to the monolith after cutover.
- `polls.vote_cast`: the results projection and the static results page (one vote each; the
  vote `id` lets a consumer ignore a redelivery), and the reverse feed.
Payload timestamps are the contract's ISO form. Adding a field is compatible; removing or
renaming one needs a new topic.
"""

from __future__ import annotations

from typing import TypedDict

from extracted.polls.models import Poll, Vote
from plumbing.clock import to_iso

POLL_CREATED = "polls.poll_created"
VOTE_CAST = "polls.vote_cast"


class OptionCreated(TypedDict):
    id: int
    position: int
    text: str


class PollCreated(TypedDict):
    id: int
    question: str
    options: list[OptionCreated]
    author_id: int
    created_at: str


class VoteCast(TypedDict):
    id: int
    poll_id: int
    option_id: int
    user_id: int
    created_at: str


def poll_created(poll: Poll) -> PollCreated:
    return PollCreated(
        id=poll.id,
        question=poll.question,
        options=[OptionCreated(id=o.id, position=o.position, text=o.text) for o in poll.options],
        author_id=poll.author_id,
        created_at=to_iso(poll.created_at),
    )


def vote_cast(vote: Vote) -> VoteCast:
    return VoteCast(
        id=vote.id,
        poll_id=vote.poll_id,
        option_id=vote.option_id,
        user_id=vote.user_id,
        created_at=to_iso(vote.created_at),
    )
