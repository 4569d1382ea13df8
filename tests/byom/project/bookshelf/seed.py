"""Fill an empty bookshelf with some books, tags, members and loans: `python -m bookshelf.seed`.

Titles and names come from all over Unicode; every run of the same size writes the same rows.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta

from bookshelf import app
from bookshelf.models import Book, Loan, Member, Tag, db, now

WORDS = ["Dune", "Ōkami", "Café", "Солярис", "三体", "Naïve", "Œuvre", "😀", "Shōgun", "Ñandú"]
TAGS = [("fiction", "Fiction", None), ("sf", "Science fiction", "fiction"),
        ("space", "Space opera", "sf"), ("poetry", "Poetry", None),
        ("ancient", "Ancient", "poetry"), ("travel", "Travel", None)]  # fmt: skip


def seed(books: int = 60, members: int = 12) -> None:
    chance = random.Random(books)
    with app.app_context():
        if db.session.query(Book).first() is not None:
            return
        for slug, label, parent in TAGS:
            db.session.add(Tag(slug=slug, label=label, parent_slug=parent))
        db.session.flush()
        tags = {tag.slug: tag for tag in db.session.query(Tag)}
        shelf = []
        for number in range(books):
            title = " ".join(chance.choice(WORDS) for _ in range(3))
            published = date(1950, 1, 1) + timedelta(days=chance.randrange(25_000))
            book = Book(isbn=f"978-0-00-{number:06d}-0", title=title, published_on=published,
                        in_print=chance.random() < 0.8)  # fmt: skip
            book.tags = chance.sample(list(tags.values()), chance.randrange(0, 3))
            db.session.add(book)
            shelf.append(book)
        for number in range(members):
            member = Member(name=f"{chance.choice(WORDS)} {number}")
            db.session.add(member)
            db.session.flush()
            for book in chance.sample(shelf, 2):
                db.session.add(Loan(member_id=member.id, isbn=book.isbn,
                                    due_on=(now() + timedelta(21)).date()))  # fmt: skip
        db.session.commit()


if __name__ == "__main__":
    seed(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
