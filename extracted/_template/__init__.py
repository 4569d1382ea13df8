"""The service template: the smallest service of this project's shape, with one toy resource.

Copy it to start a new context (see docs/extracting-a-service.md). Every service has exactly
these parts, so two services differ only in their domain:
- `settings`: a pydantic-settings class with the service's env prefix (`TEMPLATE_` here);
- `models`: its own SQLAlchemy metadata (named constraints) and the outbox table;
- `service`: the domain, synchronous functions that raise `strangler.plumbing.errors`: writes over a
  Session (the ORM), reads over a Connection (Core statements built once);
- `api`: the HTTP layer (async endpoints, no SQL): reads on the event loop (`read`), writes in
  a worker thread (`in_session`); docs/services.md, "making a service fast", says why;
- `events`: the topics and payloads it publishes through its outbox;
- `alembic/`: its alembic environment. It lives here, not under `migrations/`, because
  `strangler.datapath.schemas` treats every `migrations/*/env.py` as a real database; a copy moves
  it to `migrations/<context>/`.
`create_app` is the only entry point; nothing happens at import:
`uvicorn --factory extracted._template:create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from extracted._template import api
from extracted._template.settings import TemplateSettings
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.database import can_connect, make_reader_engine, make_session_engine
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner

__all__ = ["TemplateSettings", "create_app"]


def create_app(settings: TemplateSettings | None = None) -> FastAPI:
    """Build the service from explicit settings, or from the environment when none are given."""
    settings = settings or TemplateSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("template", settings.log_level)
    engine = make_session_engine(settings.database_url)
    reader = make_reader_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        reader.dispose()

    app = plumbing_fastapi.new_app("template", lifespan)
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.reader = reader
    app.state.signer = TokenSigner(settings.token_secret.get_secret_value())
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("template"), lambda: run_in_threadpool(can_connect, engine)
    )
    return app
