"""HTTP layer of the search service (CONTRACT.md, search). No SQL here.

The query is checked first (422 on `q`), then the page; the cursor is an offset, as in the
monolith, so both answer the same 422s for the same bad input. Searching runs in the thread
pool with one session per request.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from extracted.search import service
from plumbing.bodies import validate
from plumbing.contract import SearchQuery
from plumbing.errors import invalid
from plumbing.fastapi import first_values, in_session
from plumbing.pagination import PageRequest, page_body, parse_page

Result = TypeVar("Result")

router = APIRouter()

MAX_OFFSET = 10_000


def present(hit: service.Hit) -> dict[str, Any]:
    return {
        "kind": hit.kind,
        "id": hit.id,
        "thread_id": hit.thread_id,
        "title": hit.title,
        "snippet": hit.snippet,
    }


def offset_of(wanted: PageRequest) -> int:
    offset = wanted.after or 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise invalid("cursor", "is not a cursor this list issued")
    return offset


@router.get("/api/search")
async def search(request: Request) -> JSONResponse:
    query = first_values(request)
    wanted_query = validate(SearchQuery, {"q": query["q"]} if "q" in query else {})
    wanted = parse_page(query)
    offset = offset_of(wanted)
    hits = await in_session(
        request, lambda db: service.search(db, wanted_query.q, offset, wanted.limit)
    )
    shown = hits[: wanted.limit]
    next_offset = offset + len(shown) if len(hits) > wanted.limit else None
    return JSONResponse(page_body([present(hit) for hit in shown], next_offset))
