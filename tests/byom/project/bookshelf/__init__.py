"""Bookshelf: a small lending library, written the way many Flask apps are.

A module-level `app` (no factory), configured from environment variables when this module is
imported; Flask-SQLAlchemy models; server-rendered pages next to a JSON API; HTTP basic auth
for the librarian's writes. The catalog (books and their tags) is a blueprint; members and
their loans are plain routes on the app. Its schema is migrated by its own alembic folder,
`migrations/` (`alembic upgrade head`). Run it with `flask --app bookshelf run`.
"""

from __future__ import annotations

import os

from flask import Flask

from bookshelf.models import db

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "BOOKSHELF_DATABASE_URL", "sqlite:///bookshelf.sqlite3"
)
app.config["LIBRARIAN_PASSWORD"] = os.environ.get("BOOKSHELF_LIBRARIAN_PASSWORD", "change me")
app.json.sort_keys = False  # type: ignore[attr-defined]
db.init_app(app)

from bookshelf import members  # noqa: E402,F401  (its routes are the app's own)
from bookshelf.catalog import catalog  # noqa: E402

app.register_blueprint(catalog)
