"""Deterministic seed data for the monolith: realistic users, threads, posts, polls and votes.

The same `seed` and `scale` always give the same rows, so load tests and comparisons run on
identical data. It writes with bulk Core inserts in one transaction per table, which is what
makes it fast. Seeded users all sign in with `SEED_PASSWORD`; to keep seeding fast they share
one Argon2 hash (a fresh sign-up always gets its own salt). It never runs on a database that
already has users.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, text

from contract.passwords import Passwords
from monolith.models import Base, User

SEED_PASSWORD = "seed-password"
BATCH_ROWS = 5_000

TOPICS: dict[str, list[str]] = {
    "gardening": (
        "tomato compost seedling mulch pruning greenhouse basil soil roses orchard"
    ).split(),
    "cooking": (
        "sourdough risotto braise caramel saffron skillet umami ramen dumpling pesto"
    ).split(),
    "programming": (
        "python postgres kubernetes refactor latency compiler async monolith cache"
    ).split(),
    "travel": (
        "lisbon kyoto itinerary ferry hostel glacier passport trailhead railpass fjord"
    ).split(),
    "music": (
        "synthesizer vinyl chord harmony drummer tremolo sonata playlist mixtape bassline"
    ).split(),
    "cycling": (
        "derailleur cadence gravel peloton tubeless climb saddle chainring headwind"
    ).split(),
}
COMMON = (
    "the a and of to in is it that for on with as was at by this have from or one had not but "
    "what all were when we there can an your which their said if do will each about how up out "
    "them then she many some so these would other into has more her two like him see time could "
    "no make than first been its who now people my made over did down only way find use may water "
    "long little very after words called just where most know get through back much before go "
    "good new write our used me man too any day same right look think also around another came"
).split()
FIRST = "ada alan grace linus guido barbara ken dennis margaret edsger donald frances".split()
LAST = "lovelace turing hopper torvalds rossum liskov thompson ritchie hamilton knuth".split()


@dataclass(frozen=True)
class Scale:
    """How many rows of each kind one unit of scale means."""

    users: int
    threads: int
    posts_per_thread: int
    polls: int
    votes_per_poll: int

    @classmethod
    def of(cls, factor: float) -> Scale:
        def n(base: int) -> int:
            return max(1, round(base * factor))

        return cls(
            users=n(1000), threads=n(2000), posts_per_thread=8, polls=n(200), votes_per_poll=25
        )


@dataclass
class SeedReport:
    """What the seed wrote and how fast."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0

    @property
    def note(self) -> str:
        """What a person trying the seeded system needs to know."""
        return f"every seeded user's password is {SEED_PASSWORD}"


class Writer:
    """Generates text and timestamps from one seeded random source."""

    TOPIC_SHARE = 0.3  # of the words in a sentence that come from its topic
    POOL_SIZE = 2_000  # distinct body sentences per topic

    def __init__(self, seed: int, start: datetime) -> None:
        self.random = random.Random(seed)
        self.start = start
        self.vocabulary: dict[str, tuple[list[str], list[float]]] = {}
        self.pools: dict[str, list[str]] = {}
        for topic, words in TOPICS.items():
            weights = [self.TOPIC_SHARE / len(words)] * len(words)
            weights += [(1 - self.TOPIC_SHARE) / len(COMMON)] * len(COMMON)
            self.vocabulary[topic] = (words + COMMON, list(itertools.accumulate(weights)))

    def sentence(self, topic: str, words: int) -> str:
        population, cumulative = self.vocabulary[topic]
        chosen = self.random.choices(population, cum_weights=cumulative, k=words)
        return " ".join(chosen).capitalize() + "."

    def paragraph(self, topic: str, sentences: int) -> str:
        """Sentences drawn from a per-topic pool: realistic, and far cheaper than new ones."""
        pool = self.pools.get(topic)
        if pool is None:
            pool = [self.sentence(topic, self.random.randint(6, 16)) for _ in range(self.POOL_SIZE)]
            self.pools[topic] = pool
        return " ".join(self.random.choices(pool, k=sentences))

    def moment(self, index: int, count: int, span: timedelta = timedelta(days=365)) -> datetime:
        """Timestamps that grow with the row's index, so id order is time order."""
        return self.start + span * (index / max(1, count)) + timedelta(microseconds=index)


def _batches(
    rows: Iterator[dict[str, Any]], size: int = BATCH_ROWS
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _users(w: Writer, scale: Scale, password_hash: str) -> Iterator[dict[str, Any]]:
    for i in range(1, scale.users + 1):
        first, last = w.random.choice(FIRST), w.random.choice(LAST)
        yield {
            "id": i,
            "username": f"{first}_{last}_{i}",
            "email": f"{first}.{last}.{i}@example.org",
            "password_hash": password_hash,
            "display_name": f"{first.title()} {last.title()}",
            "bio": w.sentence(w.random.choice(list(TOPICS)), 10) if i % 3 == 0 else "",
            "created_at": w.moment(i, scale.users),
        }


def _threads(w: Writer, scale: Scale) -> Iterator[dict[str, Any]]:
    for i in range(1, scale.threads + 1):
        topic = w.random.choice(list(TOPICS))
        yield {
            "id": i,
            "title": w.sentence(topic, w.random.randint(4, 9))[:200],
            "body": w.paragraph(topic, w.random.randint(2, 6)),
            "author_id": w.random.randint(1, scale.users),
            "post_count": 0,
            "created_at": w.moment(i, scale.threads),
        }


def _posts(w: Writer, scale: Scale, post_counts: dict[int, int]) -> Iterator[dict[str, Any]]:
    total = scale.threads * scale.posts_per_thread
    for i in range(1, total + 1):
        thread_id = w.random.randint(1, scale.threads)
        post_counts[thread_id] = post_counts.get(thread_id, 0) + 1
        yield {
            "id": i,
            "thread_id": thread_id,
            "body": w.paragraph(w.random.choice(list(TOPICS)), w.random.randint(1, 4)),
            "author_id": w.random.randint(1, scale.users),
            "created_at": w.moment(i, total),
        }


def _polls(w: Writer, scale: Scale) -> Iterator[dict[str, Any]]:
    for i in range(1, scale.polls + 1):
        topic = w.random.choice(list(TOPICS))
        yield {
            "id": i,
            "question": w.sentence(topic, w.random.randint(5, 10)).rstrip(".") + "?",
            "author_id": w.random.randint(1, scale.users),
            "created_at": w.moment(i, scale.polls),
        }


def _options(w: Writer, scale: Scale, options_of: dict[int, list[int]]) -> Iterator[dict[str, Any]]:
    option_id = 0
    for poll_id in range(1, scale.polls + 1):
        texts = w.random.sample(TOPICS[w.random.choice(list(TOPICS))], w.random.randint(2, 5))
        for position, option_text in enumerate(texts):
            option_id += 1
            options_of.setdefault(poll_id, []).append(option_id)
            yield {"id": option_id, "poll_id": poll_id, "position": position, "text": option_text}


def _votes(w: Writer, scale: Scale, options_of: dict[int, list[int]]) -> Iterator[dict[str, Any]]:
    vote_id = 0
    for poll_id in range(1, scale.polls + 1):
        voters = w.random.sample(range(1, scale.users + 1), min(scale.votes_per_poll, scale.users))
        for user_id in voters:
            vote_id += 1
            yield {
                "id": vote_id,
                "poll_id": poll_id,
                "option_id": w.random.choice(options_of[poll_id]),
                "user_id": user_id,
                "created_at": w.moment(vote_id, scale.polls * scale.votes_per_poll),
            }


def _write(
    connection: Connection,
    table: Table,
    rows: Iterator[dict[str, Any]],
    advance: Callable[[int], None],
) -> int:
    written = 0
    for batch in _batches(rows):
        connection.execute(insert(table), batch)
        written += len(batch)
        advance(len(batch))
    return written


def _advance_sequences(connection: Connection) -> None:
    """On PostgreSQL, move every id sequence past the explicit ids we inserted."""
    if connection.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            )
        )


def _has_users(connection: Connection) -> bool:
    return connection.scalar(select(User.id).limit(1)) is not None


def has_users(engine: Engine) -> bool:
    """Whether the database already holds users (then `seed` refuses to run)."""
    with engine.connect() as connection:
        return _has_users(connection)


def seed(
    engine: Engine,
    scale: float = 1.0,
    seed_value: int = 42,
    passwords: Passwords | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SeedReport:
    """Fill an empty monolith database; `progress(table, done, total)` is told as rows land."""
    sizes = Scale.of(scale)
    writer = Writer(seed_value, datetime(2025, 1, 1))
    password_hash = (passwords or Passwords()).hash(SEED_PASSWORD)
    report = SeedReport()
    started = time.perf_counter()
    post_counts: dict[int, int] = {}
    options_of: dict[int, list[int]] = {}
    plan = [
        ("users", sizes.users, _users(writer, sizes, password_hash)),
        ("threads", sizes.threads, _threads(writer, sizes)),
        ("posts", sizes.threads * sizes.posts_per_thread, _posts(writer, sizes, post_counts)),
        ("polls", sizes.polls, _polls(writer, sizes)),
        ("poll_options", sizes.polls * 5, _options(writer, sizes, options_of)),
        ("votes", sizes.polls * sizes.votes_per_poll, _votes(writer, sizes, options_of)),
    ]
    with engine.begin() as connection:
        if _has_users(connection):
            raise RuntimeError("the database already has users; seed only an empty database")
        for name, expected, rows in plan:
            table = Base.metadata.tables[name]
            done = 0

            def advance(n: int, name: str = table.name, total: int = expected) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(name, done, total)

            report.rows[table.name] = _write(connection, table, rows, advance)
        _apply_post_counts(connection, post_counts)
        _advance_sequences(connection)
    report.seconds = time.perf_counter() - started
    return report


def _apply_post_counts(connection: Connection, post_counts: dict[int, int]) -> None:
    threads = Base.metadata.tables["threads"]
    updates = [{"thread": thread_id, "count": count} for thread_id, count in post_counts.items()]
    statement = (
        threads.update().where(threads.c.id == text(":thread")).values(post_count=text(":count"))
    )
    for batch in _batches(iter(updates)):
        connection.execute(statement, batch)


def seed_if_empty(
    engine: Engine,
    scale: float = 1.0,
    seed_value: int = 42,
    progress: Callable[[str, int, int], None] | None = None,
) -> SeedReport | None:
    """The workspace's seed hook (`strangler.toml`): seed an empty database, else None."""
    if has_users(engine):
        return None
    return seed(engine, scale, seed_value, progress=progress)
