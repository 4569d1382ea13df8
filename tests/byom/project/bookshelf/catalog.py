"""The catalog: books and tags, as pages and as a JSON API (the `catalog` blueprint)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, render_template, request
from sqlalchemy import select

from bookshelf.auth import librarian_only
from bookshelf.models import Book, Tag, db, parse_day

catalog = Blueprint("catalog", __name__)
PAGE = 50


def _error(status: int, message: str) -> Any:
    answer = jsonify(error=message)
    answer.status_code = status
    return answer


def _books(after: str | None, limit: int) -> list[Book]:
    query = select(Book).order_by(Book.isbn).limit(limit)
    if after:
        query = query.where(Book.isbn > after)
    return list(db.session.scalars(query))


@catalog.get("/books")
def books_page() -> str:
    return render_template("books.html", books=_books(None, PAGE))


@catalog.get("/books/<isbn>")
def book_page(isbn: str) -> str:
    book = db.session.get(Book, isbn) or abort(404)
    return render_template("book.html", book=book)


@catalog.get("/api/books")
def list_books() -> Any:
    try:
        limit = min(max(int(request.args.get("limit", PAGE)), 1), 200)
    except ValueError:
        return _error(400, "limit must be a number")
    return jsonify(items=[book.as_json() for book in _books(request.args.get("after"), limit)])


@catalog.get("/api/books/<isbn>")
def get_book(isbn: str) -> Any:
    book = db.session.get(Book, isbn)
    return jsonify(book.as_json()) if book else _error(404, "no such book")


@catalog.post("/api/books")
@librarian_only
def add_book() -> Any:
    body = request.get_json(silent=True) or {}
    isbn, title = str(body.get("isbn") or ""), str(body.get("title") or "")
    if not isbn or not title or len(isbn) > 17:
        return _error(400, "a book needs an isbn (up to 17 characters) and a title")
    if db.session.get(Book, isbn) is not None:
        return _error(409, "that book is on the shelf already")
    book = Book(isbn=isbn, title=title, published_on=parse_day(body.get("published_on")))
    db.session.add(book)
    db.session.commit()
    return jsonify(book.as_json()), 201


@catalog.put("/api/books/<isbn>/tags/<slug>")
@librarian_only
def tag_book(isbn: str, slug: str) -> Any:
    book, tag = db.session.get(Book, isbn), db.session.get(Tag, slug)
    if book is None or tag is None:
        return _error(404, "no such book or tag")
    if tag not in book.tags:
        book.tags.append(tag)
        db.session.commit()
    return "", 204


@catalog.delete("/api/books/<isbn>/tags/<slug>")
@librarian_only
def untag_book(isbn: str, slug: str) -> Any:
    book = db.session.get(Book, isbn)
    if book is None:
        return _error(404, "no such book")
    book.tags = [tag for tag in book.tags if tag.slug != slug]
    db.session.commit()
    return "", 204


@catalog.get("/api/tags")
def list_tags() -> Any:
    tags = db.session.scalars(select(Tag).order_by(Tag.slug))
    return jsonify(items=[tag.as_json() for tag in tags])


@catalog.post("/api/tags")
@librarian_only
def add_tag() -> Any:
    body = request.get_json(silent=True) or {}
    slug, label = str(body.get("slug") or ""), str(body.get("label") or "")
    parent = body.get("parent")
    if not slug or not label or len(slug) > 40:
        return _error(400, "a tag needs a slug (up to 40 characters) and a label")
    if db.session.get(Tag, slug) is not None:
        return _error(409, "that tag exists already")
    if parent is not None and db.session.get(Tag, parent) is None:
        return _error(404, "no such parent tag")
    tag = Tag(slug=slug, label=label, parent_slug=parent)
    db.session.add(tag)
    db.session.commit()
    return jsonify(tag.as_json()), 201
