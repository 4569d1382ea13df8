"""Forum: threads and posts. Domain logic over a Session; knows no web framework.

Behaves exactly as the monolith's forum context (same checks, same errors, same order) and
records each change's event in the outbox within the change's own transaction. Authors' names
come from the local replica (`Author`), kept current by users events. A writer the replica does
not know yet (their registration event has not arrived) is looked up once through an
`AuthorDirectory` before anything is written: a user it does not have is refused as the monolith
refuses them. Without a directory, such a writer is accepted on the strength of the signed token
and shown with a provisional name until the event arrives. Reads never use the directory (see
docs/cross-context-reads.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from contract.requests import NewPost, NewThread
from extracted.forum import events
from extracted.forum.models import Author, Post, Thread, outbox
from strangler.events.outbox import record
from strangler.plumbing.clock import utcnow
from strangler.plumbing.errors import NotFound, Unauthorized


class AuthorDirectory(Protocol):
    """Where the forum asks about a writer its replica does not know yet (the users service)."""

    def display_name(self, user_id: int) -> str | None:
        """The user's current display name, or None if there is no such user.

        Raises `ServiceUnavailable` when it cannot tell: the write must then fail whole.
        """
        ...


def provisional_name(user_id: int) -> str:
    """What a post shows for an author the replica does not know (no directory configured)."""
    return f"user {user_id}"


def _upsert(db: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    dialect = db.get_bind().dialect.name
    return postgresql.Insert if dialect == "postgresql" else sqlite.Insert


def _ensure_author(db: Session, author_id: int, directory: AuthorDirectory | None) -> None:
    """Make sure the replica has a row for a writer, before anything of the write is written.

    Unknown to the replica: read through the directory (401 if the user does not exist, as the
    monolith answers), or a provisional name when there is no directory. The row is inserted
    only if still absent: an event applied meanwhile is newer or as new, and events stay the
    only writer of an existing row (`remember_author`).
    """
    if db.get(Author, author_id) is not None:
        return
    if directory is None:
        name, is_provisional = provisional_name(author_id), True
    else:
        found = directory.display_name(author_id)
        if found is None:
            raise Unauthorized("the token's user does not exist")
        # Not provisional as a name, but not confirmed by an event either: the flag says so.
        name, is_provisional = found, True
    insert = _upsert(db)(Author).values(
        id=author_id, display_name=name, is_provisional=is_provisional, updated_at=utcnow()
    )
    db.execute(insert.on_conflict_do_nothing(index_elements=["id"]))


def remember_author(db: Session, author_id: int, display_name: str) -> None:
    """Record a user's current display name in the replica (from a users event)."""
    values = {"display_name": display_name, "is_provisional": False, "updated_at": utcnow()}
    insert = _upsert(db)(Author).values(id=author_id, **values)
    db.execute(insert.on_conflict_do_update(index_elements=["id"], set_=values))


def forget_authors(db: Session) -> None:
    db.execute(delete(Author))


def start_thread(
    db: Session, author_id: int, request: NewThread, directory: AuthorDirectory | None = None
) -> Thread:
    _ensure_author(db, author_id, directory)
    thread = Thread(
        title=request.title,
        body=request.body,
        author_id=author_id,
        post_count=0,
        created_at=utcnow(),
    )
    db.add(thread)
    db.flush()  # the id the event carries
    record(db, outbox, events.THREAD_CREATED, thread.id, dict(events.thread_created(thread)))
    db.commit()
    return thread


def get_thread(db: Session, thread_id: int) -> Thread:
    thread = db.get(Thread, thread_id)
    if thread is None:
        raise NotFound(f"thread {thread_id} does not exist")
    return thread


def list_threads(db: Session, before_id: int | None, limit: int) -> Sequence[Thread]:
    """Newest first; one row more than asked, so the caller knows if there is a next page."""
    query = select(Thread).order_by(Thread.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(Thread.id < before_id)
    return db.scalars(query).all()


def list_posts(db: Session, thread_id: int, after_id: int | None, limit: int) -> Sequence[Post]:
    """A thread's posts, oldest first, one more than asked; 404 if the thread does not exist."""
    get_thread(db, thread_id)
    query = select(Post).where(Post.thread_id == thread_id).order_by(Post.id).limit(limit + 1)
    if after_id is not None:
        query = query.where(Post.id > after_id)
    return db.scalars(query).all()


def add_post(
    db: Session,
    author_id: int,
    thread_id: int,
    request: NewPost,
    directory: AuthorDirectory | None = None,
) -> Post:
    # The author first, as in the monolith: 401 for a user who does not exist comes before 404,
    # and a directory lookup never runs while this transaction holds the thread's row lock.
    _ensure_author(db, author_id, directory)
    # The counter update comes before the post: it locks the thread row, so posts of one thread
    # take outbox ids in commit order and their events reach the bus in that order.
    counted = db.execute(
        update(Thread).where(Thread.id == thread_id).values(post_count=Thread.post_count + 1)
    )
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"thread {thread_id} does not exist")
    post = Post(thread_id=thread_id, body=request.body, author_id=author_id, created_at=utcnow())
    db.add(post)
    db.flush()
    record(db, outbox, events.POST_CREATED, post.id, dict(events.post_created(post)))
    db.commit()
    return post
