"""The polls context as functions: DynamoDB for its data, a bucket for its results pages.

Two entry points, as the workspace declares them (docs/serverless.md):
- `handler(event, context)`: the HTTP function, API Gateway HTTP API events (payload 2.0)
  through Mangum into the polls routes (`api`), answered as the polls service answers them;
- `on_stream(event, context)`: the results function, DynamoDB Streams batches in, each changed
  poll's counts and page out (`stream`).

Nothing happens at import. A container's first invocation (its cold start) builds the app and
the AWS clients from the environment (`settings`) and keeps them for the next ones, as Lambda
keeps a module's globals; `discard_warm_state` drops them, as a new container would start.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config
from fastapi import FastAPI
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from starlette.concurrency import run_in_threadpool

from contract.document import contract_document
from extracted.polls.serverless import api
from extracted.polls.serverless.bucket import BucketPages
from extracted.polls.serverless.repository import PollsTable
from extracted.polls.serverless.settings import FunctionSettings, StoreSettings
from extracted.polls.serverless.stream import ResultsPublisher
from strangler.plumbing import fastapi as plumbing_fastapi
from strangler.plumbing.errors import PROBLEM_CONTENT_TYPE
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner

__all__ = ["create_app", "discard_warm_state", "handler", "on_stream"]

# Standard retries back off on throttling; short timeouts leave a function time to answer.
CLIENT_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=2, read_timeout=5)


def connect(settings: StoreSettings) -> tuple[PollsTable, BucketPages]:
    """The table and the bucket, through clients built from the environment (endpoint, keys).

    botocore's own clients, which boto3's are: importing boto3 would load s3transfer too, for
    transfers a function never makes, on every cold start.
    """
    session = botocore.session.get_session()
    dynamodb = session.create_client("dynamodb", region_name=settings.region, config=CLIENT_CONFIG)
    s3 = session.create_client("s3", region_name=settings.region, config=CLIENT_CONFIG)
    return PollsTable(dynamodb, settings.table), BucketPages(s3, settings.bucket)


def create_app(settings: FunctionSettings | None = None) -> FastAPI:
    """The polls routes over the table and the bucket, from explicit settings or the
    environment."""
    settings = settings or FunctionSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("polls-function", settings.log_level)
    table, pages = connect(settings)
    app = plumbing_fastapi.new_app("polls", None)  # nothing to open or close
    app.state.table = table
    app.state.pages = pages
    # Polls verifies tokens and issues none, so no lifetime is configured here.
    app.state.signer = TokenSigner(settings.token_secret.get_secret_value())
    app.include_router(api.router)
    plumbing_fastapi.install(
        app, HttpMetrics("polls"), lambda: run_in_threadpool(table.is_reachable)
    )
    plumbing_fastapi.serve_contract(app, contract_document())
    return app


@cache
def _http_function() -> Mangum:
    # No lifespan: the app holds nothing to open or close, and Lambda gives no shutdown hook.
    # Problem bodies are text too (Mangum would send them base64-encoded).
    text = [*DEFAULT_TEXT_MIME_TYPES, PROBLEM_CONTENT_TYPE]
    return Mangum(create_app(), lifespan="off", text_mime_types=text)


@cache
def _results_function() -> ResultsPublisher:
    settings = StoreSettings()
    configure_logging("polls-results-function", settings.log_level)
    return ResultsPublisher(*connect(settings))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The HTTP function: an API Gateway HTTP API event (payload 2.0) in, its response out."""
    return dict(_http_function()(event, context))


def on_stream(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The results function: a batch of DynamoDB Streams records in, the batch's failures out."""
    return _results_function().handle(event)


def discard_warm_state() -> None:
    """Forget the app and clients built by earlier invocations: the next one starts cold."""
    _http_function.cache_clear()
    _results_function.cache_clear()
