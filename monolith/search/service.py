"""Search as the monolith does it: a deliberately naive case-insensitive LIKE scan.

Every query reads every thread and post. That is the hot spot the load comparison exposes and
the reason search is later rebuilt as a service with a real full-text index. Ranking: threads
matching in the title, then threads matching in the body, then posts; newest first within each.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, literal, select, union_all
from sqlalchemy.orm import Session

from monolith.models import Post, Thread

SNIPPET_CHARS = 160


@dataclass(frozen=True)
class Hit:
    kind: str
    id: int
    thread_id: int
    title: str
    snippet: str


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def snippet(text: str, query: str) -> str:
    """About SNIPPET_CHARS characters of `text` around the first match of `query`."""
    at = text.lower().find(query.lower())
    start = max(0, at - SNIPPET_CHARS // 3) if at >= 0 else 0
    piece = text[start : start + SNIPPET_CHARS]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + SNIPPET_CHARS < len(text) else ""
    return f"{prefix}{piece}{suffix}"


def search(db: Session, query: str, offset: int, limit: int) -> list[Hit]:
    """Hits ranked best first, `limit + 1` of them so the caller can tell if more exist."""
    pattern = _like_pattern(query)
    title_match = Thread.title.ilike(pattern, escape="\\")
    threads = select(
        literal("thread").label("kind"),
        Thread.id.label("id"),
        Thread.id.label("thread_id"),
        Thread.title.label("title"),
        case((title_match, Thread.title), else_=Thread.body).label("text"),
        case((title_match, 0), else_=1).label("rank"),
    ).where(title_match | Thread.body.ilike(pattern, escape="\\"))
    posts = (
        select(
            literal("post").label("kind"),
            Post.id.label("id"),
            Post.thread_id.label("thread_id"),
            Thread.title.label("title"),
            Post.body.label("text"),
            literal(2).label("rank"),
        )
        .join(Thread, Thread.id == Post.thread_id)
        .where(Post.body.ilike(pattern, escape="\\"))
    )
    hits = union_all(threads, posts).subquery()
    rows = db.execute(
        select(hits).order_by(hits.c.rank, hits.c.id.desc()).offset(offset).limit(limit + 1)
    ).all()
    return [
        Hit(row.kind, row.id, row.thread_id, row.title, snippet(row.text, query)) for row in rows
    ]
