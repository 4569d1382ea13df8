"""Forum: threads and posts. Domain logic over a Session; knows no web framework.

Behaves exactly as the monolith's forum context (same checks, same errors, same order) and
records each change's event in the outbox within the change's own transaction. Authors' names
come from the local replica (`Author`), kept current by users events; a writer the replica does
not know yet is accepted on the strength of the signed token and shown with a provisional
name until their registration event arrives (see docs/cross-context-reads.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from extracted.forum import events
from extracted.forum.models import Author, Post, Thread, outbox
from plumbing.clock import utcnow
from plumbing.contract import NewPost, NewThread
from plumbing.errors import NotFound
from plumbing.outbox import record


def provisional_name(user_id: int) -> str:
    """What a post shows for an author whose registration event has not arrived yet."""
    return f"user {user_id}"


def _upsert(db: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    dialect = db.get_bind().dialect.name
    return postgresql.Insert if dialect == "postgresql" else sqlite.Insert


def _ensure_author(db: Session, author_id: int) -> None:
    """Make sure the replica has a row for a writer (provisional if no event came yet)."""
    if db.get(Author, author_id) is not None:
        return
    insert = _upsert(db)(Author).values(
        id=author_id,
        display_name=provisional_name(author_id),
        is_provisional=True,
        updated_at=utcnow(),
    )
    db.execute(insert.on_conflict_do_nothing(index_elements=["id"]))


def remember_author(db: Session, author_id: int, display_name: str) -> None:
    """Record a user's current display name in the replica (from a users event)."""
    values = {"display_name": display_name, "is_provisional": False, "updated_at": utcnow()}
    insert = _upsert(db)(Author).values(id=author_id, **values)
    db.execute(insert.on_conflict_do_update(index_elements=["id"], set_=values))


def forget_authors(db: Session) -> None:
    db.execute(delete(Author))


def start_thread(db: Session, author_id: int, request: NewThread) -> Thread:
    _ensure_author(db, author_id)
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


def add_post(db: Session, author_id: int, thread_id: int, request: NewPost) -> Post:
    # The counter update comes first: it locks the thread row, so posts of one thread take
    # outbox ids in commit order and their events reach the bus in that order.
    counted = db.execute(
        update(Thread).where(Thread.id == thread_id).values(post_count=Thread.post_count + 1)
    )
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"thread {thread_id} does not exist")
    _ensure_author(db, author_id)
    post = Post(thread_id=thread_id, body=request.body, author_id=author_id, created_at=utcnow())
    db.add(post)
    db.flush()
    record(db, outbox, events.POST_CREATED, post.id, dict(events.post_created(post)))
    db.commit()
    return post
