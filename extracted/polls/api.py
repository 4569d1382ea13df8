"""HTTP layer of the polls service (docs/openapi.yaml, polls), with the static results page. No SQL.

Endpoints are async. A read runs right on the event loop, one prebuilt Core query on the
loop's own connection (`read`): a worker thread and a Session would cost more than the query.
A write checks the token and reads the body on the loop, then runs the domain in a worker
thread with one session (`in_session`), since it may wait for a lock. Checks come in the
contract's order: 401, then the body (400/413/422), then 404, then 409/422.

`/results/{id}.html` serves the page file the results consumer wrote (`pages`), as a bucket
would. A known poll whose page is not written yet (its event is still on the way) gets the page
rendered from the projection on the spot, so it is never a 404; an unknown poll is.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from contract.requests import NewPoll, NewVote
from extracted.polls import service
from extracted.polls.pages import ResultsPages
from extracted.polls.presenters import present_poll, present_results
from strangler.plumbing.fastapi import JSONResponse, body, caller_id, in_session, read

Result = TypeVar("Result")

router = APIRouter()


@router.post("/api/polls")
async def create_poll(request: Request) -> JSONResponse:
    author_id = caller_id(request)
    new_poll = await body(request, NewPoll)
    poll = await in_session(
        request, lambda db: present_poll(service.create_poll(db, author_id, new_poll))
    )
    return JSONResponse(poll, status_code=201)


@router.get("/api/polls/{poll_id:id}")
async def get_poll(request: Request, poll_id: int) -> JSONResponse:
    return JSONResponse(read(request, lambda db: present_poll(service.get_poll(db, poll_id))))


@router.post("/api/polls/{poll_id:id}/votes")
async def vote(request: Request, poll_id: int) -> JSONResponse:
    user_id = caller_id(request)
    ballot = await body(request, NewVote)
    cast = await in_session(request, lambda db: service.vote(db, user_id, poll_id, ballot))
    return JSONResponse(
        {"poll_id": cast.poll_id, "option_id": cast.option_id, "user_id": cast.user_id},
        status_code=201,
    )


@router.get("/api/polls/{poll_id:id}/results")
async def results(request: Request, poll_id: int) -> JSONResponse:
    return JSONResponse(read(request, lambda db: present_results(service.results(db, poll_id))))


@router.get("/results/{poll_id:id}.html")
async def results_page(request: Request, poll_id: int) -> HTMLResponse:
    pages: ResultsPages = request.app.state.pages
    page = await run_in_threadpool(pages.read, poll_id)
    if page is None:
        rendered = await in_session(request, lambda db: pages.render(service.results(db, poll_id)))
        page = rendered.encode()
    return HTMLResponse(page)
