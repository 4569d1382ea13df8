"""HTTP layer of the search context (CONTRACT.md, search). No SQL here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from monolith import database
from monolith.search import service
from monolith.web import page
from plumbing.bodies import validate
from plumbing.contract import SearchQuery
from plumbing.errors import invalid
from plumbing.pagination import page_body

blueprint = Blueprint("search", __name__)

MAX_OFFSET = 10_000


@blueprint.get("/api/search")
def search() -> dict[str, Any]:
    query = validate(SearchQuery, {"q": request.args["q"]} if "q" in request.args else {})
    request_page = page()
    offset = request_page.after or 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise invalid("cursor", "is not a cursor this list issued")
    hits = service.search(database.session(), query.q, offset, request_page.limit)
    shown = hits[: request_page.limit]
    next_offset = offset + len(shown) if len(hits) > request_page.limit else None
    items = [
        {
            "kind": h.kind,
            "id": h.id,
            "thread_id": h.thread_id,
            "title": h.title,
            "snippet": h.snippet,
        }
        for h in shown
    ]
    return page_body(items, next_offset)
