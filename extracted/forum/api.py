"""HTTP layer of the forum service (docs/openapi.yaml, forum). No SQL here.

Endpoints are async. A read runs right on the event loop, one prebuilt Core query on the
loop's own connection (`read`): a worker thread and a Session would cost more than the query.
A write checks the token and reads the body on the loop, then runs the domain in a worker
thread with one session (`in_session`), since it may wait for a lock. Checks come in the
contract's order: 401, then the body (400/413/422), then 404. Presenting happens inside the
session or connection, where an author's replica name is at hand. Writes hand the domain the
app's author directory (`app.state.directory`, None when `FORUM_USERS_URL` is unset); reads
never get it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request

from contract.pagination import id_after, keyset_page, page
from contract.requests import NewPost, NewThread
from extracted.forum import service
from extracted.forum.models import Post, Thread
from strangler.plumbing.clock import to_iso
from strangler.plumbing.fastapi import JSONResponse, body, caller_id, in_session, read

Result = TypeVar("Result")

router = APIRouter()


def present_author(author_id: int, name: str | None) -> dict[str, Any]:
    shown = name if name is not None else service.provisional_name(author_id)
    return {"id": author_id, "display_name": shown}


def present_thread(thread: Thread | service.ThreadView) -> dict[str, Any]:
    return {
        "id": thread.id,
        "title": thread.title,
        "body": thread.body,
        "author": present_author(thread.author_id, thread.author_name),
        "post_count": thread.post_count,
        "created_at": to_iso(thread.created_at),
    }


def present_post(post: Post | service.PostView) -> dict[str, Any]:
    return {
        "id": post.id,
        "thread_id": post.thread_id,
        "body": post.body,
        "author": present_author(post.author_id, post.author_name),
        "created_at": to_iso(post.created_at),
    }


def author_directory(request: Request) -> service.AuthorDirectory | None:
    """Where a write looks up an author the replica does not know yet (see `service`)."""
    directory: service.AuthorDirectory | None = request.app.state.directory
    return directory


@router.post("/api/threads")
async def start_thread(request: Request) -> JSONResponse:
    author_id = caller_id(request)
    new_thread = await body(request, NewThread)
    directory = author_directory(request)
    thread = await in_session(
        request,
        lambda db: present_thread(service.start_thread(db, author_id, new_thread, directory)),
    )
    return JSONResponse(thread, status_code=201)


@router.get("/api/threads")
async def list_threads(request: Request) -> JSONResponse:
    wanted = page(request)
    before = id_after(wanted)
    threads = read(
        request,
        lambda db: keyset_page(
            service.list_threads(db, before, wanted.limit), wanted.limit, present_thread
        ),
    )
    return JSONResponse(threads)


@router.get("/api/threads/{thread_id:id}")
async def get_thread(request: Request, thread_id: int) -> JSONResponse:
    return JSONResponse(read(request, lambda db: present_thread(service.get_thread(db, thread_id))))


@router.get("/api/threads/{thread_id:id}/posts")
async def list_posts(request: Request, thread_id: int) -> JSONResponse:
    wanted = page(request)
    after = id_after(wanted)
    posts = read(
        request,
        lambda db: keyset_page(
            service.list_posts(db, thread_id, after, wanted.limit), wanted.limit, present_post
        ),
    )
    return JSONResponse(posts)


@router.post("/api/threads/{thread_id:id}/posts")
async def add_post(request: Request, thread_id: int) -> JSONResponse:
    author_id = caller_id(request)
    new_post = await body(request, NewPost)
    directory = author_directory(request)
    post = await in_session(
        request,
        lambda db: present_post(service.add_post(db, author_id, thread_id, new_post, directory)),
    )
    return JSONResponse(post, status_code=201)
