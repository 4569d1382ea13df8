"""The polls service: polls, one vote per user per poll, results and the static results page.

`create_app` is the only entry point; nothing happens at import. Served as
`uvicorn --factory extracted.polls:create_app` with settings from `POLLS_*` environment
variables and the shared `STRANGLER_TOKEN_SECRET`.

Who may vote: the user a valid signed token names. The service cannot read the users
context's table, and asking the users service on every vote would couple the two at runtime,
so it trusts the signature instead (see `service` for the one behaviour this changes).

Results are event-driven: a vote commits with its `polls.vote_cast` event in the outbox; the
results consumer (`python -m extracted.events.consumer polls`, see `events`) recomputes that
poll's projection and rewrites its static page in `POLLS_RESULTS_DIR`; the service reads results
from the projection and serves the page files (see `projection` and `pages`).

The SQL side (SQLAlchemy, the models, the routes over them) is imported inside `create_app`,
not here: `extracted.polls.serverless` is a package of this one, so importing it runs this
module first, and the polls function over DynamoDB must not pay for SQLAlchemy on every cold
start (docs/serverless.md, "Measured").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from contract.document import contract_document
from extracted.polls.pages import ResultsPages
from extracted.polls.settings import PollsSettings
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner

__all__ = ["PollsSettings", "create_app"]


def create_app(settings: PollsSettings | None = None) -> FastAPI:
    """Build the service from explicit settings, or from the environment when none are given."""
    from sqlalchemy.orm import sessionmaker

    from extracted.polls import api
    from strangler.plumbing.database import can_connect, make_reader_engine, make_session_engine

    settings = settings or PollsSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("polls", settings.log_level)
    engine = make_session_engine(settings.database_url)
    reader = make_reader_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        reader.dispose()

    app = plumbing_fastapi.new_app("polls", lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.reader = reader
    app.state.signer = TokenSigner(
        settings.token_secret.get_secret_value(), timedelta(seconds=settings.token_ttl_seconds)
    )
    app.state.pages = ResultsPages(settings.results_dir)
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("polls"), lambda: run_in_threadpool(can_connect, engine)
    )
    plumbing_fastapi.serve_contract(app, contract_document())
    return app
