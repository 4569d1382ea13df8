"""The users service: sign up, sign in (signed bearer tokens) and profiles, on its own database.

`create_app` is the only entry point; nothing happens at import. Served as
`uvicorn --factory extracted.users:create_app` with settings from `USERS_*` environment
variables and the shared `STRANGLER_TOKEN_SECRET`, so tokens issued by the monolith and by
this service are accepted by both. Events go to the outbox (see `events`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from contract.document import contract_document
from contract.passwords import Passwords
from extracted.users import api
from extracted.users.settings import UsersSettings
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.database import can_connect, make_reader_engine, make_session_engine
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner

__all__ = ["UsersSettings", "create_app"]


def create_app(settings: UsersSettings | None = None) -> FastAPI:
    """Build the service from explicit settings, or from the environment when none are given."""
    settings = settings or UsersSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("users", settings.log_level)
    engine = make_session_engine(settings.database_url)
    reader = make_reader_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        reader.dispose()

    app = plumbing_fastapi.new_app("users", lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.reader = reader
    app.state.signer = TokenSigner(
        settings.token_secret.get_secret_value(), timedelta(seconds=settings.token_ttl_seconds)
    )
    app.state.passwords = Passwords(settings.password_time_cost, settings.password_memory_kib)
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("users"), lambda: run_in_threadpool(can_connect, engine)
    )
    plumbing_fastapi.serve_contract(app, contract_document())
    return app
