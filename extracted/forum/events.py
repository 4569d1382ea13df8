"""The events the forum service publishes (through its outbox) and consumes.

Published:
- `forum.thread_created`: the search index (title and body) and the reverse feed.
- `forum.post_created`: the search index (body, and the thread it belongs to) and the reverse
  feed.
Consumed (`consumer`, run with `python -m extracted.events.consumer forum`):
- `users.user_registered` and `users.user_renamed`: the authors replica, `id` and
  `display_name` only.
Payload timestamps are the contract's ISO form. Adding a field is compatible; removing or
renaming one needs a new topic.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy.orm import Session

from extracted.forum import service
from extracted.forum.models import Post, Thread, consumed
from strangler.events.outbox import Event
from strangler.events.runner import Consumer
from strangler.plumbing.clock import to_iso

THREAD_CREATED = "forum.thread_created"
POST_CREATED = "forum.post_created"
USER_REGISTERED = "users.user_registered"
USER_RENAMED = "users.user_renamed"


class ThreadCreated(TypedDict):
    id: int
    title: str
    body: str
    author_id: int
    created_at: str


class PostCreated(TypedDict):
    id: int
    thread_id: int
    body: str
    author_id: int
    created_at: str


def thread_created(thread: Thread) -> ThreadCreated:
    return ThreadCreated(
        id=thread.id,
        title=thread.title,
        body=thread.body,
        author_id=thread.author_id,
        created_at=to_iso(thread.created_at),
    )


def post_created(post: Post) -> PostCreated:
    return PostCreated(
        id=post.id,
        thread_id=post.thread_id,
        body=post.body,
        author_id=post.author_id,
        created_at=to_iso(post.created_at),
    )


def apply_user_event(db: Session, event: Event) -> None:
    """A registration or a rename: the replica row now holds the user's current name."""
    service.remember_author(db, int(event.payload["id"]), str(event.payload["display_name"]))


def forget_authors(db: Session) -> None:
    """Before a replay: the replica is rebuilt from the users events alone."""
    service.forget_authors(db)


consumer = Consumer(
    name="forum-authors",
    context="forum",
    topics=frozenset({USER_REGISTERED, USER_RENAMED}),
    handle=apply_user_event,
    tables=consumed,
    reset=forget_authors,
)
