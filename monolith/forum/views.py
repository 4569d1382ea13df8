"""HTTP layer of the forum context (docs/openapi.yaml, forum). No SQL here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from contract.pagination import id_after, keyset_page
from contract.requests import NewPost, NewThread
from monolith import database
from monolith.auth import current_user_id
from monolith.forum import service
from monolith.models import Post, Thread, User
from monolith.web import body, page
from strangler.plumbing.clock import to_iso

blueprint = Blueprint("forum", __name__)


def _author(user: User) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name}


def present_thread(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "title": thread.title,
        "body": thread.body,
        "author": _author(thread.author),
        "post_count": thread.post_count,
        "created_at": to_iso(thread.created_at),
    }


def present_post(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "thread_id": post.thread_id,
        "body": post.body,
        "author": _author(post.author),
        "created_at": to_iso(post.created_at),
    }


@blueprint.post("/api/threads")
def start_thread() -> tuple[dict[str, Any], int]:
    author_id = current_user_id()
    thread = service.start_thread(database.session(), author_id, body(NewThread))
    return present_thread(thread), 201


@blueprint.get("/api/threads")
def list_threads() -> dict[str, Any]:
    request_page = page()
    threads = service.list_threads(database.session(), id_after(request_page), request_page.limit)
    return keyset_page(threads, request_page.limit, present_thread)


@blueprint.get("/api/threads/<id:thread_id>")
def get_thread(thread_id: int) -> dict[str, Any]:
    return present_thread(service.get_thread(database.session(), thread_id))


@blueprint.get("/api/threads/<id:thread_id>/posts")
def list_posts(thread_id: int) -> dict[str, Any]:
    request_page = page()
    posts = service.list_posts(
        database.session(), thread_id, id_after(request_page), request_page.limit
    )
    return keyset_page(posts, request_page.limit, present_post)


@blueprint.post("/api/threads/<id:thread_id>/posts")
def add_post(thread_id: int) -> tuple[dict[str, Any], int]:
    author_id = current_user_id()
    post = service.add_post(database.session(), author_id, thread_id, body(NewPost))
    return present_post(post), 201
