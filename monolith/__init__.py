"""The monolith: one Flask app, one database, one blueprint per bounded context.

`create_app` is the only entry point; nothing happens at import. Served by gunicorn as
`gunicorn 'monolith:create_app()'` with settings from `MONOLITH_*` environment variables.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import sessionmaker
from werkzeug.routing import BaseConverter

from contract.passwords import Passwords
from monolith import database, forum, polls, search, users
from monolith.settings import MonolithSettings
from strangler.plumbing import flask as plumbing_flask
from strangler.plumbing.bodies import MAX_BODY_BYTES
from strangler.plumbing.database import can_connect, make_engine
from strangler.plumbing.logs import configure_logging
from strangler.plumbing.metrics import HttpMetrics
from strangler.plumbing.tokens import TokenSigner


class IdConverter(BaseConverter):
    """A positive id that fits a signed 64-bit column; anything else is not a route (404)."""

    regex = r"[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def create_app(settings: MonolithSettings | None = None) -> Flask:
    """Build the monolith from explicit settings, or from the environment when none are given."""
    settings = settings or MonolithSettings()  # type: ignore[call-arg]  # from the environment
    configure_logging("monolith", settings.log_level)
    app = Flask(__name__)
    # One byte over the limit: for a chunked body (no Content-Length) Werkzeug silently stops
    # reading at MAX_CONTENT_LENGTH, so at exactly the limit an oversized body would be parsed
    # truncated (or accepted). Reading one byte more lets `decode_json` see it and answer 413.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    # The contract answers OPTIONS like any other unlisted method: 405, on every implementation.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    app.url_map.strict_slashes = True

    engine = make_engine(settings.database_url)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["token_signer"] = TokenSigner(
        settings.token_secret.get_secret_value(), timedelta(seconds=settings.token_ttl_seconds)
    )
    app.extensions["passwords"] = Passwords(
        settings.password_time_cost, settings.password_memory_kib
    )
    app.teardown_appcontext(database.close_session)

    for context in (users, forum, polls, search):
        app.register_blueprint(context.blueprint)
    plumbing_flask.install(app, HttpMetrics("monolith"), lambda: can_connect(engine))
    return app
