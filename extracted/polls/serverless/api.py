"""HTTP layer of the polls function: the polls routes of docs/openapi.yaml over DynamoDB.

The same routes, bodies, checks and errors as the polls service (`extracted.polls.api`), with
the same presenters (`extracted.polls.presenters`), in the contract's order: 401, then the
body (400/413/422), then 404, then 409/422. botocore calls block, so each runs in a worker
thread.

`/results/{id}.html` is the bucket's to serve; the function answers it too, with the page in
the bucket or, for a known poll whose page is not written yet (its stream record is still on
the way), the page rendered from its counts, as the service does. An unknown poll is a 404.
This module holds no table access of its own: `repository` does that.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from contract.requests import NewPoll, NewVote
from extracted.polls import pages
from extracted.polls.presenters import present_poll, present_results
from extracted.polls.serverless.bucket import BucketPages
from extracted.polls.serverless.repository import PollsTable
from strangler.plumbing.fastapi import JSONResponse, body, caller_id


def polls_table(request: Request) -> PollsTable:
    table: PollsTable = request.app.state.table
    return table


def bucket_pages(request: Request) -> BucketPages:
    bucket: BucketPages = request.app.state.pages
    return bucket


TableDep = Annotated[PollsTable, Depends(polls_table)]
PagesDep = Annotated[BucketPages, Depends(bucket_pages)]

router = APIRouter()


@router.post("/api/polls")
async def create_poll(request: Request, table: TableDep) -> JSONResponse:
    author_id = caller_id(request)
    new_poll = await body(request, NewPoll)
    poll = await run_in_threadpool(table.create_poll, author_id, new_poll)
    return JSONResponse(present_poll(poll), status_code=201)


@router.get("/api/polls/{poll_id:id}")
async def get_poll(poll_id: int, table: TableDep) -> JSONResponse:
    return JSONResponse(present_poll(await run_in_threadpool(table.get_poll, poll_id)))


@router.post("/api/polls/{poll_id:id}/votes")
async def vote(request: Request, poll_id: int, table: TableDep) -> JSONResponse:
    user_id = caller_id(request)
    ballot = await body(request, NewVote)
    cast = await run_in_threadpool(table.vote, user_id, poll_id, ballot)
    return JSONResponse(
        {"poll_id": cast.poll_id, "option_id": cast.option_id, "user_id": cast.user_id},
        status_code=201,
    )


@router.get("/api/polls/{poll_id:id}/results")
async def results(poll_id: int, table: TableDep) -> JSONResponse:
    return JSONResponse(present_results(await run_in_threadpool(table.results, poll_id)))


@router.get("/results/{poll_id:id}.html")
async def results_page(poll_id: int, table: TableDep, bucket: PagesDep) -> HTMLResponse:
    page = await run_in_threadpool(bucket.read, poll_id)
    if page is None:
        counted = await run_in_threadpool(table.results, poll_id)
        page = pages.render(counted).encode()
    return HTMLResponse(page)
