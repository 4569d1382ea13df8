"""HTTP layer of the search service (CONTRACT.md, search). No SQL here.

The query is checked first (422 on `q`), then the page; the cursor is an offset, as in the
monolith, so both answer the same 422s for the same bad input. Searching runs in the thread
pool with one session per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from extracted.search import service
from plumbing.bodies import validate
from plumbing.contract import SearchQuery
from plumbing.errors import invalid
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


async def in_session(request: Request, work: Callable[[Session], Result]) -> Result:
    """Run `work` with a fresh session in the thread pool; the session closes afterwards."""
    sessions: sessionmaker[Session] = request.app.state.sessions

    def run() -> Result:
        with sessions() as db:
            return work(db)

    return await run_in_threadpool(run)


def first_values(request: Request) -> dict[str, str]:
    # The first value of a repeated parameter wins, as in the monolith (werkzeug).
    return dict(reversed(request.query_params.multi_items()))


def page(query: dict[str, str]) -> PageRequest:
    return parse_page(query)


def offset_of(wanted: PageRequest) -> int:
    offset = wanted.after or 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise invalid("cursor", "is not a cursor this list issued")
    return offset


@router.get("/api/search")
async def search(request: Request) -> JSONResponse:
    query = first_values(request)
    wanted_query = validate(SearchQuery, {"q": query["q"]} if "q" in query else {})
    wanted = page(query)
    offset = offset_of(wanted)
    hits = await in_session(
        request, lambda db: service.search(db, wanted_query.q, offset, wanted.limit)
    )
    shown = hits[: wanted.limit]
    next_offset = offset + len(shown) if len(hits) > wanted.limit else None
    return JSONResponse(page_body([present(hit) for hit in shown], next_offset))
