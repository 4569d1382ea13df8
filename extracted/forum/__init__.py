"""The forum service: threads and posts on its own database, authors from a local replica.

`create_app` is the only entry point; nothing happens at import. Served as
`uvicorn --factory extracted.forum:create_app` with settings from `FORUM_*` environment
variables and the shared `STRANGLER_TOKEN_SECRET`. Events go to the outbox (see `events`);
the authors replica is fed by `python -m extracted.events.consumer forum`, and read through
from the users service at `FORUM_USERS_URL` on a write by an author it does not know yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from contract.document import contract_document
from extracted.forum import api
from extracted.forum.directory import UsersServiceDirectory
from extracted.forum.settings import ForumSettings
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.database import can_connect, make_reader_engine, make_session_engine
from strangler.plumbing.logs import configure_logging, get_logger
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner

__all__ = ["ForumSettings", "create_app"]


def create_app(settings: ForumSettings | None = None) -> FastAPI:
    """Build the service from explicit settings, or from the environment when none are given."""
    settings = settings or ForumSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("forum", settings.log_level)
    engine = make_session_engine(settings.database_url)
    reader = make_reader_engine(settings.database_url)
    directory = UsersServiceDirectory(settings.users_url) if settings.users_url else None
    if directory is None:
        get_logger("forum").warning(
            "FORUM_USERS_URL is not set: writers unknown to the authors replica are accepted "
            "unchecked and shown as 'user <id>' until their registration event arrives"
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if directory is not None:
            directory.close()
        engine.dispose()
        reader.dispose()

    app = plumbing_fastapi.new_app("forum", lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.reader = reader
    app.state.directory = directory
    app.state.signer = TokenSigner(
        settings.token_secret.get_secret_value(), timedelta(seconds=settings.token_ttl_seconds)
    )
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("forum"), lambda: run_in_threadpool(can_connect, engine)
    )
    plumbing_fastapi.serve_contract(app, contract_document())
    return app
