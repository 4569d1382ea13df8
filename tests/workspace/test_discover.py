"""Route discovery: every endpoint of a Flask app becomes a route of the workspace inventory."""

from __future__ import annotations

import tomllib

from flask import Blueprint, Flask

from strangler.workspace.discover import discover_routes, inventory_text
from strangler.workspace.model import RouteSpec


def _app() -> Flask:
    app = Flask(__name__)
    users = Blueprint("users", __name__)
    users.add_url_rule("/api/users/<int:user_id>", "get_user", lambda user_id: "", methods=["GET"])
    users.add_url_rule("/api/users", "sign_up", lambda: "", methods=["POST"])
    app.register_blueprint(users)
    app.add_url_rule("/healthz", "healthz", lambda: "")
    app.add_url_rule("/results/<id>.html", "page", lambda id: "")
    app.add_url_rule("/files/<path:rest>", "files", lambda rest: "")
    return app


def test_discovery_lists_every_endpoint_with_its_blueprint() -> None:
    by_name = {route.name: route for route in discover_routes(_app())}

    assert set(by_name) == {"users.get_user", "users.sign_up", "page"}
    assert by_name["users.get_user"].path == "/api/users/{user_id}"
    assert by_name["users.get_user"].methods == ["GET"]
    assert by_name["users.get_user"].blueprint == "users"
    assert by_name["page"].path == "/results/{id}.html"
    assert by_name["page"].blueprint is None


def test_discovery_accepts_a_factory() -> None:
    names = [route.name for route in discover_routes(_app)]
    assert names == ["users.sign_up", "users.get_user", "page"]  # ordered by path


def test_the_inventory_text_reads_back_as_the_same_routes() -> None:
    routes = discover_routes(_app())
    document = tomllib.loads(inventory_text(routes))
    assert [RouteSpec.model_validate(entry) for entry in document["routes"]] == routes
