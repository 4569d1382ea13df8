"""`alembic.ini` at a workspace's root: one section per database whose alembic environment is
the toolkit's, so alembic works from the shell as its users expect:

    alembic -n users upgrade head
    alembic -n users revision --autogenerate -m "a bio for every user"
    alembic -n users current; alembic -n users history; alembic -n users downgrade -1

Each such environment (`strangler.datapath.alembic_env.run`) migrates the database its
variable names in strangler.toml, else the local system's SQLite file, exactly as `strangler`
does. A section a file has already is left as it is, and so is everything else in the file
(the project's own `[alembic]` section, its logging). This module must never run alembic.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from strangler.workspace import Workspace

FILENAME = "alembic.ini"
TOOLKIT_ENVIRONMENT = "strangler.datapath.alembic_env"


def is_toolkit_environment(folder: Path) -> bool:
    """Whether an alembic folder's env.py is the toolkit's kind (reads the URL our way)."""
    env = folder / "env.py"
    return env.exists() and TOOLKIT_ENVIRONMENT in env.read_text(encoding="utf-8")


def section(workspace: Workspace, name: str) -> str:
    """The section of database `name` (its environment must exist)."""
    folder = workspace.alembic_folder(name)
    assert folder is not None
    relative = folder.relative_to(workspace.root).as_posix()
    return (
        f"[{name}]\n"
        f"# `alembic -n {name} ...`: the {name} database ({workspace.url_variable(name)}, else"
        f" .strangler/{name}.sqlite3)\n"
        f"script_location = %(here)s/{relative}\n"
        "prepend_sys_path = %(here)s\n"
        "path_separator = os\n"
    )


def ensure_sections(workspace: Workspace) -> list[str]:
    """Add a section for every database of the workspace with a toolkit environment that the
    root's alembic.ini lacks (creating the file if need be); the sections added."""
    path = workspace.root / FILENAME
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(existing)
    added = []
    blocks = []
    for name in workspace.databases:
        folder = workspace.alembic_folder(name)
        if folder is None or not is_toolkit_environment(folder) or parser.has_section(name):
            continue
        blocks.append(section(workspace, name))
        added.append(name)
    if blocks and not parser.has_section("loggers"):
        blocks.append(LOGGING)
    if blocks:
        introduction = (
            ""
            if existing
            else "# One section per database of this workspace: `alembic -n NAME upgrade head`.\n"
        )
        separator = "\n" if existing and not existing.endswith("\n\n") else ""
        path.write_text(existing + separator + introduction + "\n".join(blocks), encoding="utf-8")
    return added


# What alembic prints from the shell (the toolkit's environments read these sections).
LOGGING = """[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""
