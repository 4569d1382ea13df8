"""Forum: threads and posts. Domain logic over a Session; knows no web framework.

Authors are read through the `users` table directly: in the monolith that is one join. Once
the forum is extracted, that cross-context read is what has to be redesigned.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from contract.requests import NewPost, NewThread
from monolith.models import Post, Thread
from monolith.users.service import signed_in_user
from strangler.plumbing.errors import NotFound


def start_thread(db: Session, author_id: int, request: NewThread) -> Thread:
    thread = Thread(
        title=request.title, body=request.body, author=signed_in_user(db, author_id), post_count=0
    )
    db.add(thread)
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
    author = signed_in_user(db, author_id)
    get_thread(db, thread_id)
    post = Post(thread_id=thread_id, body=request.body, author=author)
    db.add(post)
    db.execute(
        update(Thread).where(Thread.id == thread_id).values(post_count=Thread.post_count + 1)
    )
    db.commit()
    return post
