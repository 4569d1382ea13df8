"""The bookshelf's simulated users for `strangler compare`: only its tasks and its sign-in.

The user classes, the load shape and the figures are the toolkit's
(`strangler.compare.locust_support`); the kinds, their weights and think times are
`scenario.toml`'s. Every user signs in as the librarian (HTTP basic auth, the password from
BOOKSHELF_LIBRARIAN_PASSWORD, as the bookshelf reads it) and puts a book of its own on the shelf,
so the reads find something on a database nobody seeded. Requests are named by route template.
"""

from __future__ import annotations

import base64
import os
import uuid

from strangler.compare.locust_support import Visitor, install

PASSWORD = os.environ.get("BOOKSHELF_LIBRARIAN_PASSWORD", "change me")


def sign_in(user: Visitor) -> None:
    secret = base64.b64encode(f"librarian:{PASSWORD}".encode()).decode()
    user.headers = {"Authorization": f"Basic {secret}"}
    user.state["isbns"] = []  # the books this user put on the shelf
    add_book(user)


def _isbn(user: Visitor) -> str:
    isbns = user.state["isbns"]
    return str(user.chance.choice(isbns)) if isbns else "978-0-00-000000-0"


# Reads
def list_books(user: Visitor) -> None:
    user.expect("GET", "/api/books?limit=20", "/api/books", (200,))


def get_book(user: Visitor) -> None:
    user.expect("GET", f"/api/books/{_isbn(user)}", "/api/books/{isbn}", (200, 404))


def book_page(user: Visitor) -> None:
    user.expect("GET", f"/books/{_isbn(user)}", "/books/{isbn}", (200, 404))


def books_page(user: Visitor) -> None:
    user.expect("GET", "/books", "/books", (200,))


def list_tags(user: Visitor) -> None:
    user.expect("GET", "/api/tags", "/api/tags", (200,))


# Writes (the librarian's)
def add_book(user: Visitor) -> None:
    isbn = f"L{uuid.uuid4().hex[:16]}"  # unique in every run, at most 17 characters
    body = {"isbn": isbn, "title": f"Load book {isbn[-4:]} \u00e9"}
    answer = user.expect("POST", "/api/books", "/api/books", (201,), json=body,
                         headers=user.headers)  # fmt: skip
    if answer.status_code == 201:
        user.state["isbns"].append(isbn)


def add_member(user: Visitor) -> None:
    body = {"name": f"Load reader {user.chance.getrandbits(24):06x}"}
    user.expect("POST", "/api/members", "/api/members", (201,), json=body, headers=user.headers)


def hot_list(user: Visitor) -> None:
    """The isolation experiment's hot spot: the longest page of books, back to back."""
    user.expect("GET", "/api/books?limit=200", "/api/books", (200,))


install(
    globals(),
    tasks=[list_books, get_book, book_page, books_page, list_tags, add_book, add_member],
    hot=hot_list,
    sign_in=sign_in,
)
