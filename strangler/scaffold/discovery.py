"""What `strangler init` learns from a Flask app: its routes, its schema, its database.

The app is imported from the project's folder (a module-level app as it is, a factory
called). Its schema is the SQLAlchemy MetaData its own modules hold (a Flask-SQLAlchemy `db`,
a declarative `Base`, a bare `MetaData`), named by an import path the workspace can resolve;
an app with no models has its database reflected instead. The variable its database URL comes
from is the one whose value is the URL the app uses now. This module must never write a file.
"""

from __future__ import annotations

import configparser
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import MetaData, Table, create_engine

from strangler.runtime.apps import is_factory, resolve
from strangler.workspace.discover import discover_routes
from strangler.workspace.model import RouteSpec

HEALTH_PATHS = ("/healthz", "/health", "/_health", "/ping")
DEFAULT_VARIABLE = "DATABASE_URL"


class DiscoveryError(RuntimeError):
    """The app could not be read; the message says why and what to try."""


@dataclass(frozen=True)
class Schema:
    """The app's tables, and where the workspace finds them again (None: reflect)."""

    metadata: MetaData
    import_path: str | None
    source: str  # how it was found, for the file's comment


@dataclass(frozen=True)
class FoundApp:
    """Everything `init` writes the first workspace file from."""

    import_path: str
    routes: list[RouteSpec]
    schema: Schema
    url_variable: str
    variable_is_guess: bool
    alembic: str | None
    health_path: str | None


def load_app(import_path: str, root: Path) -> Any:
    """The Flask app `import_path` names, imported from `root` (a factory is called)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        found = resolve(import_path)
    except (ImportError, AttributeError) as error:
        raise DiscoveryError(
            f"cannot import {import_path} from {root}: {error}. Run `strangler init` in your"
            " project's folder, with --app module:attribute naming your Flask app or factory"
        ) from error
    app = found() if is_factory(found) else found
    if not hasattr(app, "url_map"):
        raise DiscoveryError(f"{import_path} is not a Flask app (it has no URL map)")
    return app


def discover(
    import_path: str, root: Path, database_url: str | None = None, variable: str | None = None
) -> FoundApp:
    """Read the app at `import_path`: routes, schema, database variable, alembic folder."""
    root = root.resolve()
    app = load_app(import_path, root)
    configured = database_url or _configured_url(app)
    schema = find_schema(root) or _reflected(configured)
    found_variable = variable or _variable_holding(configured)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    health = next((path for path in HEALTH_PATHS if path in rules), None)
    return FoundApp(
        import_path,
        [route for route in discover_routes(app) if route.path != health],  # the system's
        schema,
        found_variable or DEFAULT_VARIABLE,
        variable is None and found_variable is None,
        _alembic_folder(root),
        health,
    )


def _configured_url(app: Any) -> str | None:
    config = getattr(app, "config", {})
    url = config.get("SQLALCHEMY_DATABASE_URI") if hasattr(config, "get") else None
    return str(url) if url else None


def _variable_holding(url: str | None) -> str | None:
    """The environment variable whose value is the app's database URL now (`DATABASE` names
    first)."""
    if not url:
        return None
    holding = sorted(
        (name for name, value in os.environ.items() if value == url),
        key=lambda name: ("DATABASE" not in name, len(name)),
    )
    return holding[0] if holding else None


def find_schema(root: Path) -> Schema | None:
    """The MetaData with the most tables among the project's imported modules."""
    found: dict[int, tuple[MetaData, list[tuple[int, int, str]]]] = {}
    for order, (name, module) in enumerate(list(sys.modules.items())):
        if not _is_under(module, root):
            continue
        for attribute, value in list(vars(module).items()):
            candidate = _metadata_of(value)
            if candidate is None or not candidate[0].tables:
                continue
            metadata, suffix, rank = candidate
            # Deeper modules first (models rather than the package that imports them), then
            # the one imported first (where the object was made, rather than its importers).
            found.setdefault(id(metadata), (metadata, []))[1].append(
                (rank - name.count("."), order, f"{name}:{attribute}{suffix}")
            )
    if not found:
        return None
    metadata, paths = max(found.values(), key=lambda entry: len(entry[0].tables))
    best = min(paths)[2]
    return Schema(metadata, best, f"the models' MetaData, {best}")


def _is_under(module: ModuleType, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        path = Path(file).resolve()
    except OSError:
        return False
    installed = "site-packages" in path.parts or path.is_relative_to(Path(sys.prefix).resolve())
    return path.is_relative_to(root) and not installed


def _metadata_of(value: Any) -> tuple[MetaData, str, int] | None:
    """(metadata, the attribute path's suffix, rank: lower is the better name) of a value."""
    if isinstance(value, MetaData):
        return value, "", 0
    if isinstance(value, Table) or (isinstance(value, type) and hasattr(value, "__table__")):
        return None  # a table or a mapped model: its Base or db names the MetaData better
    if isinstance(value, ModuleType):
        return None
    try:
        metadata = getattr(value, "metadata", None)
    except Exception:  # a proxy (Flask's `request`, `current_app`) refuses outside a request
        return None
    if isinstance(metadata, MetaData):
        return metadata, ".metadata", 10
    return None


def _reflected(url: str | None) -> Schema:
    if not url:
        raise DiscoveryError(
            "the app declares no SQLAlchemy models that init can find, and no database URL is"
            " known: give one with --database-url so its tables can be reflected"
        )
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
    finally:
        engine.dispose()
    hidden = [name for name in metadata.tables if name.startswith(("strangler_", "alembic_"))]
    for name in hidden:
        metadata.remove(metadata.tables[name])
    return Schema(metadata, None, "reflected from the database (no models were found)")


def _alembic_folder(root: Path) -> str | None:
    """The project's own alembic folder: alembic.ini's script_location, or a folder with an
    env.py named migrations or alembic."""
    ini = root / "alembic.ini"
    if ini.exists():
        parser = configparser.ConfigParser()
        parser.read(ini)
        location = parser.get("alembic", "script_location", fallback=None)
        if location and (root / location / "env.py").exists():
            return location
    for name in ("migrations", "alembic"):
        if (root / name / "env.py").exists():
            return name
    return None
