"""HTTP layer of the search context (docs/openapi.yaml, search). No SQL here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from contract.pagination import offset_after, offset_page
from contract.requests import SearchQuery
from monolith import database
from monolith.search import service
from monolith.web import page
from strangler.plumbing.bodies import validate

blueprint = Blueprint("search", __name__)


def present(hit: service.Hit) -> dict[str, Any]:
    return {
        "kind": hit.kind,
        "id": hit.id,
        "thread_id": hit.thread_id,
        "title": hit.title,
        "snippet": hit.snippet,
    }


@blueprint.get("/api/search")
def search() -> dict[str, Any]:
    query = validate(SearchQuery, {"q": request.args["q"]} if "q" in request.args else {})
    request_page = page()
    offset = offset_after(request_page)
    hits = service.search(database.session(), query.q, offset, request_page.limit)
    return offset_page(hits, offset, request_page.limit, present)
