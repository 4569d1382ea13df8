"""HTTP layer of the search service (docs/openapi.yaml, search). No SQL here.

The query is checked first (422 on `q`), then the page; the cursor is an offset, as in the
monolith, so both answer the same 422s for the same bad input. Searching runs in a worker
thread with one session per request: a ranked full-text query takes milliseconds, which on
the event loop would hold every other request behind it (and SQLite searches with the GIL
released, so threads use both cores).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request

from contract.pagination import offset_after, offset_page, parse_page
from contract.requests import SearchQuery
from extracted.search import service
from strangler.plumbing.bodies import validate
from strangler.plumbing.fastapi import JSONResponse, first_values, in_session

Result = TypeVar("Result")

router = APIRouter()


def present(hit: service.Hit) -> dict[str, Any]:
    return {
        "kind": hit.kind,
        "id": hit.id,
        "thread_id": hit.thread_id,
        "title": hit.title,
        "snippet": hit.snippet,
    }


@router.get("/api/search")
async def search(request: Request) -> JSONResponse:
    query = first_values(request)
    wanted_query = validate(SearchQuery, {"q": query["q"]} if "q" in query else {})
    wanted = parse_page(query)
    offset = offset_after(wanted)
    hits = await in_session(
        request, lambda db: service.search(db, wanted_query.q, offset, wanted.limit)
    )
    return JSONResponse(offset_page(hits, offset, wanted.limit, present))
