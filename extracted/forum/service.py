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

from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import Connection, bindparam, delete, select, update
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


class ThreadView(NamedTuple):
    """A thread as a read shows it; `author_name` is None when the replica lacks the author."""

    id: int
    title: str
    body: str
    author_id: int
    author_name: str | None
    post_count: int
    created_at: datetime


class PostView(NamedTuple):
    """A post as a read shows it; `author_name` is None when the replica lacks the author."""

    id: int
    thread_id: int
    body: str
    author_id: int
    author_name: str | None
    created_at: datetime


# Reads are Core statements built once, on a plain connection: no Session, no identity map,
# no statement built per request (docs/services.md, "making a service fast").
_THREADS = select(
    Thread.id,
    Thread.title,
    Thread.body,
    Thread.author_id,
    Author.display_name,
    Thread.post_count,
    Thread.created_at,
).outerjoin(Author, Author.id == Thread.author_id)
_THREAD = _THREADS.where(Thread.id == bindparam("thread_id"))
_THREADS_BEFORE = (
    _THREADS.where(Thread.id < bindparam("before_id"))
    .order_by(Thread.id.desc())
    .limit(bindparam("limit"))
)
_THREAD_EXISTS = select(Thread.id).where(Thread.id == bindparam("thread_id"))
_POSTS_AFTER = (
    select(Post.id, Post.thread_id, Post.body, Post.author_id, Author.display_name, Post.created_at)
    .outerjoin(Author, Author.id == Post.author_id)
    .where(Post.thread_id == bindparam("thread_id"), Post.id > bindparam("after_id"))
    .order_by(Post.id)
    .limit(bindparam("limit"))
)
# Past every id: the cursor of a newest-first list's first page.
_NO_ID_YET = 2**63 - 1


def get_thread(db: Connection, thread_id: int) -> ThreadView:
    row = db.execute(_THREAD, {"thread_id": thread_id}).first()
    if row is None:
        raise NotFound(f"thread {thread_id} does not exist")
    return ThreadView._make(row)


def list_threads(db: Connection, before_id: int | None, limit: int) -> list[ThreadView]:
    """Newest first; one row more than asked, so the caller knows if there is a next page."""
    page = {"before_id": _NO_ID_YET if before_id is None else before_id, "limit": limit + 1}
    return [ThreadView._make(row) for row in db.execute(_THREADS_BEFORE, page)]


def list_posts(db: Connection, thread_id: int, after_id: int | None, limit: int) -> list[PostView]:
    """A thread's posts, oldest first, one more than asked; 404 if the thread does not exist."""
    if db.execute(_THREAD_EXISTS, {"thread_id": thread_id}).first() is None:
        raise NotFound(f"thread {thread_id} does not exist")
    page = {"thread_id": thread_id, "after_id": after_id or 0, "limit": limit + 1}
    return [PostView._make(row) for row in db.execute(_POSTS_AFTER, page)]


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
