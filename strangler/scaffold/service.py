"""`strangler new service CONTEXT`: a FastAPI service for one context, from the template.

The files of `template/` are rendered into the project (`extracted/<context>/` unless told
otherwise): the app factory, its settings, models for the context's tables (from the
monolith's schema, as strangler.toml maps them), one handler per route of the context (each
answering 501 until written), an alembic environment whose first revision (made by alembic's
autogenerate against an empty database, then applied once to prove it) creates those tables,
and a parity test. Then the workspace file gets the service and a stage that extracts it, and
alembic.ini a section for its database. Nothing is written when anything is refused.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from strangler.scaffold import alembic_ini
from strangler.scaffold.models_code import render, service_tables
from strangler.scaffold.workspace_edits import add_service
from strangler.workspace import Workspace, load_workspace
from strangler.workspace.model import RouteSpec

TEMPLATE = Path(__file__).resolve().parent / "template"
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ScaffoldError(ValueError):
    """The service cannot be scaffolded as asked; the message says why."""


@dataclass(frozen=True)
class Scaffolded:
    """What `new_service` wrote."""

    folder: Path
    files: list[Path]
    revision: Path
    alembic_sections: list[str]


def _render(name: str, **values: object) -> str:
    return Template((TEMPLATE / name).read_text(encoding="utf-8")).substitute(values)


def _function_name(route: RouteSpec, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", route.name.rsplit(".", 1)[-1]).strip("_").lower() or "handler"
    base = base if base[0].isalpha() else f"route_{base}"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def api_code(context: str, routes: list[RouteSpec]) -> str:
    """The service's api module: one 501 handler per route of the context."""
    taken: set[str] = {"router"}
    blocks = [_render("api.py.tmpl", context=context)]
    for route in routes:
        parameters = "".join(f", {name}: str" for name in _PARAMETER.findall(route.path))
        blocks.append(
            _render(
                "route.py.tmpl",
                path=json.dumps(route.path),
                path_text=route.path,
                methods=json.dumps(list(route.methods)),
                methods_text="/".join(route.methods),
                function=_function_name(route, taken),
                parameters=parameters,
                endpoint=route.name,
                context=context,
            )
        )
    return "".join(blocks)


def new_service(
    workspace: Workspace,
    context: str,
    monolith_schema: MetaData,
    package: str = "extracted",
    force: bool = False,
) -> Scaffolded:
    """Scaffold `context`'s service into the workspace's project; see the module doc."""
    spec = workspace.contexts.get(context)
    if spec is None:
        known = ", ".join(workspace.context_names) or "none"
        raise ScaffoldError(f"strangler.toml has no context {context!r} (contexts: {known})")
    if spec.service is not None:
        raise ScaffoldError(f"{context} has a service already ({spec.service.app})")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", package):
        raise ScaffoldError(f"{package!r} is not a package name (e.g. extracted, services)")
    folder = workspace.root.joinpath(*package.split("."), context)
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ScaffoldError(f"{folder} exists and is not empty (--force writes over it)")
    mapped = [*spec.tables, *(table for feed in spec.replicas for table in feed.tables)]
    missing = [table.monolith for table in mapped if table.monolith not in monolith_schema.tables]
    if missing:
        raise ScaffoldError(f"the monolith's schema has no tables {missing}")
    tables = service_tables(monolith_schema, mapped)
    values = {
        "context": context,
        "prefix": context.upper(),
        "package": package,
        "depth": len(package.split(".")) + 1,
        "variable": f"{context.upper()}_DATABASE_URL",
        "tables": ", ".join(table.name for table in tables) or "no table yet",
    }
    files = {
        folder / "__init__.py": _render("__init__.py.tmpl", **values),
        folder / "settings.py": _render("settings.py.tmpl", **values),
        folder / "api.py": api_code(context, workspace.spec.routes_claimed_by(context)),
        folder / "models.py": render(tables, _render("models_header.py.tmpl", **values)),
        folder / "alembic" / "env.py": _render("alembic/env.py.tmpl", **values),
        folder / "alembic" / "script.py.mako": (
            TEMPLATE / "alembic" / "script.py.mako"
        ).read_text(),
        folder / "test_parity.py": _render("test_parity.py.tmpl", **values),
    }
    edited = add_service(
        workspace.file.read_text(encoding="utf-8"),
        context,
        _service_lines(context, package, folder.relative_to(workspace.root).as_posix()),
        _stage_lines(context, bool(tables)),
    )
    for parent in _packages(workspace.root, package):
        init = parent / "__init__.py"
        if not init.exists():
            files[init] = '"""The services extracted from the monolith, one package each."""\n'
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "alembic" / "versions").mkdir(exist_ok=True)
    revision = first_revision(workspace.root, folder / "alembic", context)
    workspace.file.write_text(edited, encoding="utf-8")
    sections = alembic_ini.ensure_sections(load_workspace(workspace.file))
    return Scaffolded(folder, sorted(files), revision, sections)


def _packages(root: Path, package: str) -> list[Path]:
    parts = package.split(".")
    return [root.joinpath(*parts[: depth + 1]) for depth in range(len(parts))]


def _service_lines(context: str, package: str, folder: str) -> list[str]:
    variable = f"{context.upper()}_DATABASE_URL"
    database = (
        f'url_variable = "{variable}", alembic = "{folder}/alembic",'
        f' metadata = "{package}.{context}.models:Base.metadata"'
    )
    return [
        f"[contexts.{context}.service]",
        f"# scaffolded by `strangler new service {context}` ({folder}/): its app, its",
        f"# database ({variable}; unset, a SQLite file of the local system), its alembic",
        "# environment and its models",
        f'app = "{package}.{context}:create_app"',
        f"database = {{ {database} }}",
    ]


def _stage_lines(context: str, owns_tables: bool) -> list[str]:
    summary = (
        f"The {context} routes are served by the {context} service, which owns its tables."
        if owns_tables
        else f"The {context} routes are served by the {context} service."
    )
    return [
        f"# added by `strangler new service {context}`",
        "[[stages]]",
        f'title = "{context} extracted"',
        f'summary = "{summary}"',
        f'extract = "{context}"',
    ]


def first_revision(root: Path, folder: Path, context: str) -> Path:
    """Autogenerate revision 0001 (every table of the models) against an empty database, and
    apply it to that database once: a revision that does not apply is not written."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    config = Config()
    config.set_main_option("script_location", str(folder))
    with tempfile.TemporaryDirectory() as scratch:
        config.attributes["database_url"] = f"sqlite:///{Path(scratch) / 'empty.sqlite3'}"
        script = command.revision(
            config, message=f"the {context} service's tables", autogenerate=True, rev_id="0001"
        )
        command.upgrade(config, "head")
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
