"""Build the search index from existing data: read a forum database, index every row.

For data that never went through the event path (rows backfilled from the monolith into the
forum's database, or an index lost with its disk). It reads only the `threads` and `posts`
columns the forum and the monolith share, in id-ordered chunks, and never writes there.
Indexing is an upsert, so running it while the consumer runs, or twice, is harmless; a post
whose thread was written after the threads were read gets that thread indexed first, so a
rebuild under live writes finishes in one pass.

    SEARCH_DATABASE_URL=... python -m extracted.search.rebuild --from postgresql+psycopg://.../forum
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, Table, Text, select
from sqlalchemy.orm import Session, sessionmaker

from extracted.search import service
from extracted.search.models import Document
from extracted.search.settings import SearchSettings
from strangler.plumbing.database import Id, make_engine
from strangler.plumbing.logs import configure_logging, get_logger

log = get_logger("rebuild")
CHUNK = 500

_source = MetaData()
threads = Table(
    "threads",
    _source,
    Column("id", Id, primary_key=True),
    Column("title", Text),
    Column("body", Text),
    Column("created_at", DateTime),
)
posts = Table(
    "posts",
    _source,
    Column("id", Id, primary_key=True),
    Column("thread_id", Id),
    Column("body", Text),
    Column("created_at", DateTime),
)


def _chunks(source: Engine, table: Table) -> Iterator[list[Any]]:
    after = 0
    while True:
        with source.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.id > after).order_by(table.c.id).limit(CHUNK)
            ).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].id


def _index_thread(db: Session, row: Any) -> None:
    service.index_thread(db, row.id, row.title, row.body, row.created_at)


def _index_posts(db: Session, source: Engine, chunk: list[Any]) -> int:
    """Index a chunk of posts; threads written after the thread pass are indexed first.

    Returns how many such threads there were.
    """
    wanted = {row.thread_id for row in chunk}
    indexed = set(
        db.scalars(
            select(Document.source_id).where(
                Document.kind == "thread", Document.source_id.in_(wanted)
            )
        )
    )
    missing = wanted - indexed
    if missing:
        with source.connect() as connection:
            for thread in connection.execute(select(threads).where(threads.c.id.in_(missing))):
                _index_thread(db, thread)
    for row in chunk:
        service.index_post(db, row.id, row.thread_id, row.body, row.created_at)
    return len(missing)


def rebuild(source: Engine, sessions: sessionmaker[Session]) -> int:
    """Index every thread, then every post, of the `source` database; return how many."""
    count = 0
    for chunk in _chunks(source, threads):
        with sessions.begin() as db:
            for row in chunk:
                _index_thread(db, row)
        count += len(chunk)
    for chunk in _chunks(source, posts):
        with sessions.begin() as db:
            count += _index_posts(db, source, chunk)
        count += len(chunk)
    return count


def build_index(databases: Mapping[str, str], settings: Mapping[str, str]) -> int:
    """The workspace's build hook: index every thread and post of the forum's database (the
    service's, since the forum is extracted before search) into the search database."""
    forum = make_engine(databases["forum"])
    search = make_engine(databases["search"])
    try:
        return rebuild(forum, sessionmaker(search, expire_on_commit=False))
    finally:
        forum.dispose()
        search.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the search index from a forum database.")
    parser.add_argument("--from", dest="source_url", required=True, help="forum database URL")
    arguments = parser.parse_args(argv)
    settings = SearchSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("search-rebuild", settings.log_level)
    source = make_engine(arguments.source_url)
    target = make_engine(settings.database_url)
    try:
        count = rebuild(source, sessionmaker(target))
        log.info("index rebuilt", documents=count)
    finally:
        source.dispose()
        target.dispose()


if __name__ == "__main__":
    main()
