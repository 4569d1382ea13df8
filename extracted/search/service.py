"""Search: index threads and posts, and find them by text, best match first.

Domain logic over a Session; knows no web framework. The index is a real full-text index
(SQLite FTS5 ranked by bm25, PostgreSQL tsvector ranked by ts_rank; see `models`). User
input is never passed to a query language as is: it is cut into words, and each word becomes
a quoted prefix term, so `"`, `*`, `AND`, `:` or `(` in a query are just text. A document
matches when every word of the query starts a word of it (in a thread's title or body, in a
post's body); a document whose heading matches outranks one matched in its body only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from extracted.search.models import Document

SNIPPET_CHARS = 160
MAX_TERMS = 16
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    kind: str
    id: int
    thread_id: int
    title: str
    snippet: str


def terms(query: str) -> list[str]:
    """The words of a query, lower-cased, de-duplicated, in order (at most MAX_TERMS)."""
    return list(dict.fromkeys(_WORD.findall(query.lower())))[:MAX_TERMS]


def _upsert(db: Session, values: dict[str, object]) -> None:
    dialect = db.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Document)
    changed = {key: value for key, value in values.items() if key not in ("kind", "source_id")}
    db.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=["kind", "source_id"], set_=changed
        )
    )


def index_thread(db: Session, thread_id: int, title: str, body: str, created_at: datetime) -> None:
    """Add or refresh a thread: found by its title and its body."""
    _upsert(
        db,
        {
            "kind": "thread",
            "source_id": thread_id,
            "thread_id": thread_id,
            "title": title,
            "heading": title,
            "body": body,
            "created_at": created_at,
        },
    )


class UnknownThread(LookupError):
    """A post arrived for a thread the index has never seen (its event must come first)."""


def index_post(db: Session, post_id: int, thread_id: int, body: str, created_at: datetime) -> None:
    """Add or refresh a post: found by its body, shown with its thread's title."""
    title = db.scalar(
        select(Document.title).where(Document.kind == "thread", Document.source_id == thread_id)
    )
    if title is None:
        raise UnknownThread(f"thread {thread_id} of post {post_id} is not indexed")
    _upsert(
        db,
        {
            "kind": "post",
            "source_id": post_id,
            "thread_id": thread_id,
            "title": title,
            "heading": "",
            "body": body,
            "created_at": created_at,
        },
    )


# Documents whose heading alone matches come first (as title matches do in the monolith), then
# by relevance, then newest first.
_SQLITE_SEARCH = text(
    """
    SELECT d.kind, d.source_id, d.thread_id, d.title, d.heading, d.body
    FROM documents_fts JOIN documents AS d ON d.id = documents_fts.rowid
    WHERE documents_fts MATCH :match
    ORDER BY
        d.id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH :heading_match) DESC,
        bm25(documents_fts, 4.0, 1.0), d.created_at DESC, d.id DESC
    LIMIT :limit OFFSET :offset
    """
)

_POSTGRES_SEARCH = text(
    """
    SELECT d.kind, d.source_id, d.thread_id, d.title, d.heading, d.body
    FROM documents AS d, to_tsquery('simple', :match) AS query
    WHERE d.search_vector @@ query
    ORDER BY
        ts_filter(d.search_vector, '{a}') @@ query DESC,
        ts_rank(d.search_vector, query) DESC, d.created_at DESC, d.id DESC
    LIMIT :limit OFFSET :offset
    """
)


def search(db: Session, query: str, offset: int, limit: int) -> list[Hit]:
    """Hits ranked best first, `limit + 1` of them so the caller can tell if more exist."""
    words = terms(query)
    if not words:  # only punctuation: nothing a word index can match
        return []
    page = {"limit": limit + 1, "offset": offset}
    if db.get_bind().dialect.name == "postgresql":
        match = " & ".join(f"{word}:*" for word in words)
        rows = db.execute(_POSTGRES_SEARCH, {"match": match, **page}).all()
    else:
        match = " ".join(f'"{word}"*' for word in words)
        heading_match = f"heading : ({match})"
        rows = db.execute(
            _SQLITE_SEARCH, {"match": match, "heading_match": heading_match, **page}
        ).all()
    return [
        Hit(
            row.kind,
            row.source_id,
            row.thread_id,
            row.title,
            snippet(_matching_text(row.heading, row.body, words), words),
        )
        for row in rows
    ]


def _matching_text(heading: str, body: str, words: list[str]) -> str:
    folded = heading.lower()
    return heading if heading and any(word in folded for word in words) else body


def snippet(text_: str, words: list[str]) -> str:
    """About SNIPPET_CHARS characters of `text_` around the first match of any query word."""
    folded = text_.lower()
    found = [at for at in (folded.find(word) for word in words) if at >= 0]
    at = min(found) if found else -1
    start = max(0, at - SNIPPET_CHARS // 3) if at >= 0 else 0
    piece = text_[start : start + SNIPPET_CHARS]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + SNIPPET_CHARS < len(text_) else ""
    return f"{prefix}{piece}{suffix}"


def clear(db: Session) -> None:
    """Empty the index (before a replay or a rebuild)."""
    db.execute(delete(Document))
