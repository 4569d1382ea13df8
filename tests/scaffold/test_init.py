"""Specification of `strangler init` and `strangler check --config` on a project of one's own.

`init` reads the bookshelf (a module-level Flask app with Flask-SQLAlchemy models) and writes
a first workspace file: one context per blueprint, or per URL prefix for routes outside any,
each with the tables named like it or its routes and the tables that hang on those by foreign
keys; every route in the inventory, in mode monolith; a comment on each guess. It never writes
over a file without --force. An app with no models has its database reflected. `check
--config` refuses what does not match the app or its schema, naming each problem's line.
"""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

from strangler.scaffold.grouping import assign_tables, context_name, group_routes, path_words
from strangler.scaffold.workspace_edits import add_service
from strangler.workspace.model import RouteSpec
from tests.scaffold.conftest import project_env
from tests.support.command_line import strangler


def _document(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / "strangler.toml").read_text())


def test_a_context_per_blueprint_or_url_prefix_each_with_the_tables_it_is_named_after(
    initialised: Path,
) -> None:
    written = tomllib.loads((initialised / "strangler.toml").read_text())
    contexts = written["contexts"]
    assert contexts["catalog"]["routes"] == {"blueprints": ["catalog"]}
    assert contexts["members"]["routes"]["endpoints"] == [
        "add_member", "get_member", "member_loans", "member_page",
    ]  # fmt: skip
    tables = {name: [table["monolith"] for table in spec["tables"]]
              for name, spec in contexts.items()}  # fmt: skip
    assert tables == {
        "catalog": ["books", "tags", "book_tags"],  # book_tags: by its foreign keys
        "loans": ["loans"],
        "members": ["members"],
    }
    assert all("service" not in spec for spec in contexts.values()) and "stages" not in written


def test_the_monolith_is_described_as_the_app_runs_today(initialised: Path) -> None:
    monolith = tomllib.loads((initialised / "strangler.toml").read_text())["monolith"]
    assert monolith["app"] == "bookshelf:app"
    assert monolith["database"] == {
        "url_variable": "BOOKSHELF_DATABASE_URL",  # the variable that holds the app's URL
        "alembic": "migrations",
        "metadata": "bookshelf.models:db.metadata",
    }
    assert monolith["health_path"] == "/health"


def test_every_route_is_in_the_inventory_and_every_guess_says_so(initialised: Path) -> None:
    text = (initialised / "strangler.toml").read_text()
    routes = {route["name"] for route in tomllib.loads(text)["routes"]}
    assert {"catalog.get_book", "catalog.books_page", "lend", "member_page"} <= routes
    assert "health" not in routes  # the system's own, not a route to move
    for table in ("books", "tags", "book_tags", "loans", "members"):
        [line] = [line for line in text.splitlines() if f'monolith = "{table}"' in line]
        assert "# guess:" in line
    assert "loans.isbn references books (catalog)" in text
    assert 'isbn = { url = "/api/books", field = "isbn" }' in text  # for the gates' probes


def test_init_never_writes_over_a_workspace_file_without_force(
    initialised: Path, copy_of: Callable[[Path], Path]
) -> None:
    folder = copy_of(initialised)
    (folder / "strangler.toml").write_text("# mine\n")
    refused = strangler(folder, "init", "--app", "bookshelf:app", env=project_env(folder))
    assert refused.returncode == 1 and "--force" in refused.stdout
    assert (folder / "strangler.toml").read_text() == "# mine\n"
    forced = strangler(folder, "init", "--app", "bookshelf:app", "--force",
                       env=project_env(folder))  # fmt: skip
    assert (
        forced.returncode == 0 and "[contexts.catalog]" in (folder / "strangler.toml").read_text()
    )


def test_an_app_that_cannot_be_imported_is_refused_in_one_line(tmp_path: Path) -> None:
    refused = strangler(tmp_path, "init", "--app", "nowhere:app")
    assert refused.returncode == 1
    assert "cannot import nowhere:app" in refused.stdout and "Traceback" not in refused.stderr


PLAIN_APP = """
import os
from flask import Flask
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["WIDGETS_URL"]

@app.get("/api/widgets/<int:widget_id>")
def widget(widget_id):
    return {}

@app.get("/api/widgets")
def widgets():
    return {"items": []}
"""


def test_an_app_with_no_models_has_its_database_reflected(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(PLAIN_APP)
    database = tmp_path / "widgets.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.executescript(
            "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "CREATE TABLE widget_parts (widget_id INTEGER REFERENCES widgets (id),"
            " part TEXT, PRIMARY KEY (widget_id, part));"
        )
    url = f"sqlite:///{database}"
    done = strangler(tmp_path, "init", "--app", "plain:app", "--database-url", url,
                     env={"WIDGETS_URL": url, "PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    written = _document(tmp_path)
    assert written["monolith"]["database"] == {"url_variable": "WIDGETS_URL"}  # type: ignore[index]
    tables = written["contexts"]["widgets"]["tables"]  # type: ignore[index]
    assert [table["monolith"] for table in tables] == ["widgets", "widget_parts"]
    assert "reflects the tables from the database" in (tmp_path / "strangler.toml").read_text()


def test_check_config_names_the_line_of_every_problem(
    initialised: Path, copy_of: Callable[[Path], Path]
) -> None:
    folder = copy_of(initialised)
    path = folder / "strangler.toml"
    text = path.read_text()
    add_tag = 'name = "catalog.add_tag"\nmethods = ["POST"]\npath = "/api/'
    text = text.replace(f"{add_tag}tags", f"{add_tag}labels")
    text = text.replace('{ monolith = "loans" }', '{ monolith = "lones" }')
    text = text.replace(
        "[contexts.members]\n", '[contexts.members]\nhooks = { build = "nope:x" }\n'
    )
    path.write_text(text)
    done = strangler(folder, "check", "--config", env=project_env(folder))
    assert done.returncode == 1
    lines = path.read_text().splitlines()

    def line_of(fragment: str) -> int:
        return next(number for number, line in enumerate(lines, 1) if fragment in line)

    output = " ".join(done.stdout.split())
    assert (
        f"strangler.toml:{line_of('nope:x')}: contexts.members.hooks.build: nope:x cannot" in output
    )
    assert (
        f"strangler.toml:{line_of('lones')}: contexts.loans.tables.0: the monolith has no" in output
    )
    assert "catalog.add_tag is POST /api/tags in the app, not POST /api/labels" in output


def _routes(*entries: tuple[str, str, str | None]) -> list[RouteSpec]:
    return [RouteSpec(name=name, methods=["GET"], path=path, blueprint=blueprint)
            for name, path, blueprint in entries]  # fmt: skip


def test_routes_outside_blueprints_group_by_the_first_word_of_their_path() -> None:
    contexts, unclaimed = group_routes(
        _routes(
            ("shop.cart", "/cart", "shop"),
            ("list_orders", "/api/v1/orders", None),
            ("order", "/orders/{order_id}.html", None),
            ("home", "/", None),
            ("proxy", "/proxy/x", None),
        )
    )
    assert {guess.name: (guess.blueprints, guess.endpoints) for guess in contexts} == {
        "shop": (["shop"], []),
        "orders": ([], ["list_orders", "order"]),
        "proxy_context": ([], ["proxy"]),  # `proxy` names a process of every system
    }
    assert [route.name for route in unclaimed] == ["home"]
    assert path_words("/api/v2/Line-Items/{id}/notes.json") == ["line_items", "notes"]
    assert context_name("3D Models!") == "context_3d_models"


def test_tables_go_by_name_then_by_foreign_keys_else_stay_the_monolith_s() -> None:
    schema = MetaData()
    Table("orders", schema, Column("id", Integer, primary_key=True))
    Table("order_lines", schema, Column("order_id", ForeignKey("orders.id"), primary_key=True),
          Column("line", Integer, primary_key=True))  # fmt: skip
    Table("products", schema, Column("sku", String, primary_key=True))
    Table("audit", schema, Column("id", Integer, primary_key=True))
    contexts, _ = group_routes(
        _routes(
            ("list_orders", "/api/orders", None), ("catalog.item", "/products/{sku}", "catalog")
        )
    )
    left = assign_tables(schema, contexts)
    tables = {guess.name: dict(guess.tables) for guess in contexts}
    assert list(tables["orders"]) == ["orders", "order_lines"]
    assert "references orders" in tables["orders"]["order_lines"]
    assert list(tables["catalog"]) == ["products"]
    assert left == ["audit"]


WORKSPACE = """# mine
[monolith]
app = "a:app"

# the shop
[contexts.shop]
tables = [{ monolith = "carts" }]  # guess: kept

# the next one
[contexts.other]
service = { app = "o:app" }

[[stages]]
title = "other"
summary = "o"
extract = "other"

# the end
[[stages]]
title = "x"
summary = "y"
retire_monolith = true
unmatched = "other"
"""


def test_a_new_service_goes_after_its_context_and_its_stage_before_the_retiring_one() -> None:
    with_service = add_service(
        WORKSPACE,
        "shop",
        ["[contexts.shop.service]", 'app = "s:app"'],
        ["[[stages]]", 'title = "shop"', 'summary = "s"', 'extract = "shop"'],
    )
    lines = with_service.splitlines()
    assert lines.index("[contexts.shop.service]") < lines.index("# the next one")
    assert "# guess: kept" in with_service and "# mine" in with_service
    stages = tomllib.loads(with_service)["stages"]
    assert [stage.get("extract") for stage in stages] == ["other", "shop", None]
    assert lines.index('extract = "shop"') < lines.index("# the end")
