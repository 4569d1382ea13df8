"""The events the search service consumes; it publishes none.

Consumed (`consumer`, run with `python -m extracted.events.consumer search`):
- `forum.thread_created`: index the thread (title and body).
- `forum.post_created`: index the post (body), shown with its thread's title. The forum's
  events arrive in outbox order, so a thread is indexed before its posts; a post whose thread
  is unknown fails, is retried, and is parked if the thread never comes.
`--replay` empties the index and reads the forum's events again from the start of the bus;
`python -m extracted.search.rebuild` builds the index from a forum database instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from extracted.search import service
from extracted.search.models import consumed
from strangler.events.outbox import Event
from strangler.events.runner import Consumer

THREAD_CREATED = "forum.thread_created"
POST_CREATED = "forum.post_created"


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.removesuffix("Z"))


def index_event(db: Session, event: Event) -> None:
    """Index the thread or post an event describes."""
    data = event.payload
    if event.topic == THREAD_CREATED:
        service.index_thread(
            db, int(data["id"]), str(data["title"]), str(data["body"]), _moment(data["created_at"])
        )
    elif event.topic == POST_CREATED:
        service.index_post(
            db,
            int(data["id"]),
            int(data["thread_id"]),
            str(data["body"]),
            _moment(data["created_at"]),
        )


def clear_index(db: Session) -> None:
    service.clear(db)


consumer = Consumer(
    name="search-indexer",
    context="search",
    topics=frozenset({THREAD_CREATED, POST_CREATED}),
    handle=index_event,
    tables=consumed,
    reset=clear_index,
)
