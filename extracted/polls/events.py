"""The events the polls service publishes (through its outbox), and its results consumer.

Published (`aggregate_id` is the poll id for both):
- `polls.poll_created`: the results consumer (the poll's first page) and the reverse feed to
  the monolith after cutover.
- `polls.vote_cast`: the results consumer and the reverse feed.
Payload timestamps are the contract's ISO form. Adding a field is compatible; removing or
renaming one needs a new topic.

Consumed by the service itself (`consumer`, run with `python -m extracted.events.consumer
polls`): each of its own events is the trigger that recomputes that poll's results projection
from the votes table and rewrites its static page; the event's payload is not needed, which is
what makes redelivery and replay harmless. A batch of events recomputes each poll it names
once, in one transaction, however many votes it carries. `--replay` recomputes every poll and
rewrites every page first (polls copied from the monolith have no events), then re-reads the
bus.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypedDict

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.orm import Session

from extracted.polls import projection
from extracted.polls.models import Poll, Vote, consumed
from extracted.polls.pages import ResultsPages
from extracted.polls.settings import ResultsSettings
from strangler.events.outbox import Event
from strangler.events.runner import Consumer
from strangler.plumbing.clock import to_iso

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


def results_consumer(pages: ResultsPages, registry: CollectorRegistry) -> Consumer:
    """The results consumer, writing its pages into `pages`' folder and counting them."""
    written = Counter("poll_pages_written_total", "Static results pages written", registry=registry)

    def recompute(db: Session, poll_ids: Collection[int]) -> None:
        written.inc(projection.write_pages(db, pages, poll_ids))  # before the write lock
        projection.refresh(db, poll_ids)

    def recompute_named(db: Session, events: Sequence[Event]) -> None:
        recompute(db, {int(event.aggregate_id) for event in events})

    def recompute_every_poll(db: Session) -> None:
        recompute(db, projection.every_poll_id(db))

    return Consumer(
        name="polls-results",
        context="polls",
        topics=frozenset({POLL_CREATED, VOTE_CAST}),
        handle=lambda db, event: recompute_named(db, [event]),
        tables=consumed,
        reset=recompute_every_poll,
        handle_batch=recompute_named,
    )


def consumer(registry: CollectorRegistry) -> Consumer:
    """The results consumer of a process: its pages folder from `POLLS_RESULTS_DIR`."""
    return results_consumer(ResultsPages(ResultsSettings().results_dir), registry)
