"""HTTP layer of the bookshelf's catalog service: what the end-to-end test writes into the
scaffold in place of its 501 handlers, as a user would.

It answers as the monolith's `catalog` blueprint does, route for route: the same JSON, the
same pages (its templates are the monolith's, copied), the same errors, the same basic auth
(the librarian's password is `BOOKSHELF_LIBRARIAN_PASSWORD`, as for the monolith).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from extracted.catalog.models import Book, BookTag, Tag
from strangler.plumbing.fastapi import in_session, read_body

router = APIRouter()
PAGE = 50
pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape()
)
Result = TypeVar("Result")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _is_librarian(request: Request) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = os.environ.get("BOOKSHELF_LIBRARIAN_PASSWORD", "change me")
    return (
        scheme.lower() == "basic"
        and user == "librarian"
        and hmac.compare_digest(password, expected)
    )


def _unauthorized() -> JSONResponse:
    return _error(401, "sign in as the librarian", {"WWW-Authenticate": 'Basic realm="bookshelf"'})


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await read_body(request))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _tags_of(db: Session, isbns: list[str]) -> dict[str, list[Tag]]:
    found: dict[str, list[Tag]] = {isbn: [] for isbn in isbns}
    query = (
        select(BookTag.isbn, Tag).join(Tag, Tag.slug == BookTag.slug)
        .where(BookTag.isbn.in_(isbns)).order_by(Tag.slug)
    )  # fmt: skip
    for isbn, tag in db.execute(query):
        found[isbn].append(tag)
    return found


def _view(book: Book, tags: list[Tag]) -> dict[str, Any]:
    return {
        "isbn": book.isbn, "title": book.title, "published_on": book.published_on,
        "in_print": book.in_print, "tags": tags,
    }  # fmt: skip


def _as_json(book: Book, tags: list[Tag]) -> dict[str, Any]:
    return {
        "isbn": book.isbn,
        "title": book.title,
        "published_on": book.published_on.isoformat() if book.published_on else None,
        "added_at": book.added_at.isoformat(timespec="seconds"),
        "in_print": book.in_print,
        "tags": [tag.slug for tag in tags],
    }


def _books(db: Session, after: str | None, limit: int) -> list[tuple[Book, list[Tag]]]:
    query = select(Book).order_by(Book.isbn).limit(limit)
    if after:
        query = query.where(Book.isbn > after)
    books = list(db.scalars(query))
    tags = _tags_of(db, [book.isbn for book in books])
    return [(book, tags[book.isbn]) for book in books]


async def _run(request: Request, work: Callable[[Session], Result]) -> Result:
    return await in_session(request, work)


@router.get("/books")
async def books_page(request: Request) -> Response:
    found = await _run(request, lambda db: _books(db, None, PAGE))
    books = [_view(book, tags) for book, tags in found]
    return HTMLResponse(pages.get_template("books.html").render(books=books))


@router.get("/books/{isbn}")
async def book_page(request: Request, isbn: str) -> Response:
    def read(db: Session) -> dict[str, Any] | None:
        book = db.get(Book, isbn)
        return None if book is None else _view(book, _tags_of(db, [isbn])[isbn])

    book = await _run(request, read)
    if book is None:
        return HTMLResponse("<!doctype html><title>404 Not Found</title>", status_code=404)
    return HTMLResponse(pages.get_template("book.html").render(book=book))


@router.get("/api/books")
async def list_books(request: Request) -> Response:
    try:
        limit = min(max(int(request.query_params.get("limit", PAGE)), 1), 200)
    except ValueError:
        return _error(400, "limit must be a number")
    after = request.query_params.get("after")
    found = await _run(request, lambda db: _books(db, after, limit))
    return JSONResponse({"items": [_as_json(book, tags) for book, tags in found]})


@router.get("/api/books/{isbn}")
async def get_book(request: Request, isbn: str) -> Response:
    def read(db: Session) -> dict[str, Any] | None:
        book = db.get(Book, isbn)
        return None if book is None else _as_json(book, _tags_of(db, [isbn])[isbn])

    found = await _run(request, read)
    return JSONResponse(found) if found else _error(404, "no such book")


@router.post("/api/books")
async def add_book(request: Request) -> Response:
    if not _is_librarian(request):
        return _unauthorized()
    body = await _json(request)
    isbn, title = str(body.get("isbn") or ""), str(body.get("title") or "")
    if not isbn or not title or len(isbn) > 17:
        return _error(400, "a book needs an isbn (up to 17 characters) and a title")
    published = date.fromisoformat(str(body["published_on"])) if body.get("published_on") else None

    def write(db: Session) -> dict[str, Any] | None:
        if db.get(Book, isbn) is not None:
            return None
        book = Book(isbn=isbn, title=title, published_on=published, in_print=True,
                    added_at=datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
        db.add(book)
        db.commit()
        return _as_json(book, [])

    created = await _run(request, write)
    if created is None:
        return _error(409, "that book is on the shelf already")
    return JSONResponse(created, status_code=201)


@router.put("/api/books/{isbn}/tags/{slug}")
async def tag_book(request: Request, isbn: str, slug: str) -> Response:
    if not _is_librarian(request):
        return _unauthorized()

    def write(db: Session) -> bool:
        if db.get(Book, isbn) is None or db.get(Tag, slug) is None:
            return False
        if db.get(BookTag, (isbn, slug)) is None:
            db.add(BookTag(isbn=isbn, slug=slug))
            db.commit()
        return True

    return (
        Response(status_code=204)
        if await _run(request, write)
        else _error(404, "no such book or tag")
    )


@router.delete("/api/books/{isbn}/tags/{slug}")
async def untag_book(request: Request, isbn: str, slug: str) -> Response:
    if not _is_librarian(request):
        return _unauthorized()

    def write(db: Session) -> bool:
        if db.get(Book, isbn) is None:
            return False
        db.execute(delete(BookTag).where(BookTag.isbn == isbn, BookTag.slug == slug))
        db.commit()
        return True

    return Response(status_code=204) if await _run(request, write) else _error(404, "no such book")


@router.get("/api/tags")
async def list_tags(request: Request) -> Response:
    def read(db: Session) -> list[dict[str, Any]]:
        return [{"slug": tag.slug, "label": tag.label, "parent": tag.parent_slug}
                for tag in db.scalars(select(Tag).order_by(Tag.slug))]  # fmt: skip

    return JSONResponse({"items": await _run(request, read)})


@router.post("/api/tags")
async def add_tag(request: Request) -> Response:
    if not _is_librarian(request):
        return _unauthorized()
    body = await _json(request)
    slug, label, parent = (
        str(body.get("slug") or ""),
        str(body.get("label") or ""),
        body.get("parent"),
    )
    if not slug or not label or len(slug) > 40:
        return _error(400, "a tag needs a slug (up to 40 characters) and a label")

    def write(db: Session) -> tuple[int, str] | dict[str, Any]:
        if db.get(Tag, slug) is not None:
            return 409, "that tag exists already"
        if parent is not None and db.get(Tag, parent) is None:
            return 404, "no such parent tag"
        db.add(Tag(slug=slug, label=label, parent_slug=parent))
        db.commit()
        return {"slug": slug, "label": label, "parent": parent}

    created = await _run(request, write)
    if isinstance(created, tuple):
        return _error(*created)
    return JSONResponse(created, status_code=201)
