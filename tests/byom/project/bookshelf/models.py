"""The bookshelf's tables, as Flask-SQLAlchemy models.

Books are keyed by their ISBN (text), tags by a slug (text; a tag may sit under a parent tag),
members by a UUID; `book_tags` pairs books and tags with no key of its own; loans are numbered.
Times are stored in UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


def now() -> datetime:
    return datetime.now(UTC)


book_tags = db.Table(
    "book_tags",
    db.Column("isbn", db.String(17), db.ForeignKey("books.isbn"), primary_key=True),
    db.Column("slug", db.String(40), db.ForeignKey("tags.slug"), primary_key=True),
)


class Book(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "books"

    isbn = db.Column(db.String(17), primary_key=True)
    title = db.Column(db.Text, nullable=False)
    published_on = db.Column(db.Date, nullable=True)
    added_at = db.Column(db.DateTime, nullable=False, default=lambda: now().replace(tzinfo=None))
    in_print = db.Column(db.Boolean, nullable=False, default=True)
    tags = db.relationship("Tag", secondary=book_tags, order_by="Tag.slug")

    def as_json(self) -> dict[str, object]:
        return {
            "isbn": self.isbn,
            "title": self.title,
            "published_on": self.published_on.isoformat() if self.published_on else None,
            "added_at": self.added_at.isoformat(timespec="seconds"),
            "in_print": self.in_print,
            "tags": [tag.slug for tag in self.tags],
        }


class Tag(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "tags"

    slug = db.Column(db.String(40), primary_key=True)
    label = db.Column(db.Text, nullable=False)
    parent_slug = db.Column(db.String(40), db.ForeignKey("tags.slug"), nullable=True)

    def as_json(self) -> dict[str, object]:
        return {"slug": self.slug, "label": self.label, "parent": self.parent_slug}


class Member(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "members"

    id = db.Column(db.Uuid, primary_key=True, default=uuid.uuid4)
    name = db.Column(db.Text, nullable=False)
    joined_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)

    def as_json(self) -> dict[str, object]:
        return {"id": str(self.id), "name": self.name, "joined_at": _utc(self.joined_at)}


class Loan(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "loans"

    id = db.Column(db.Integer, primary_key=True)
    member_id = db.Column(db.Uuid, db.ForeignKey("members.id"), nullable=False)
    isbn = db.Column(db.String(17), db.ForeignKey("books.isbn"), nullable=False)
    borrowed_at = db.Column(db.DateTime(timezone=True), nullable=False, default=now)
    due_on = db.Column(db.Date, nullable=False)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "member_id": str(self.member_id),
            "isbn": self.isbn,
            "borrowed_at": _utc(self.borrowed_at),
            "due_on": self.due_on.isoformat(),
        }


def _utc(moment: datetime) -> str:
    """SQLite hands back UTC without its zone, PostgreSQL with it: one way to print both."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def parse_day(text: object) -> date | None:
    return date.fromisoformat(str(text)) if text else None
