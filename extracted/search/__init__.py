"""The search service: full-text search over threads and posts, an index fed by forum events.

`create_app` is the only entry point; nothing happens at import. Served as
`uvicorn --factory extracted.search:create_app` with settings from `SEARCH_*` environment
variables. The index is filled by `python -m extracted.events.consumer search` (forum events)
or built from a forum database by `python -m extracted.search.rebuild`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from contract.document import contract_document
from extracted.search import api
from extracted.search.settings import SearchSettings
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.database import can_connect, make_session_engine
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics

__all__ = ["SearchSettings", "create_app"]


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    """Build the service from explicit settings, or from the environment when none are given."""
    settings = settings or SearchSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("search", settings.log_level)
    engine = make_session_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = plumbing_fastapi.new_app("search", lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("search"), lambda: run_in_threadpool(can_connect, engine)
    )
    plumbing_fastapi.serve_contract(app, contract_document())
    return app
