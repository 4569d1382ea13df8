"""A stage that extracts a context to functions (`target = "serverless"`): its routes go to
the context's function and its pages' route to the bucket, the runtime runs the emulator, the
stream poller and the items sync instead of a service, and nginx leaves those routes to the
Python proxy; a stage that cannot run as functions is refused with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strangler.gateways.nginx_control import migrating
from strangler.runtime.plan import Places, plan
from strangler.runtime.topology import stage_topology, topology
from strangler.serverless.emulator import EMULATOR
from strangler.state import ContextState, MigrationState
from strangler.workspace import BUNDLED, Workspace, load_workspace
from strangler_proxy.table import table_document
from tests.workspace.test_serverless_declaration import line_of, refused

POLLS_STAGE = 'extract = "polls"\n'


def serverless_stage(tmp_path: Path, text: str | None = None) -> Path:
    """The bundled workspace with polls extracted to functions at its stage."""
    source = BUNDLED.read_text() if text is None else text
    path = tmp_path / "strangler.toml"
    path.write_text(source.replace(POLLS_STAGE, POLLS_STAGE + 'target = "serverless"\n', 1))
    return path


def workspace(tmp_path: Path) -> Workspace:
    return load_workspace(serverless_stage(tmp_path))


def test_the_stage_runs_polls_as_functions_and_the_services_before_and_after_it(
    tmp_path: Path,
) -> None:
    migration = workspace(tmp_path).migration()
    polls = migration.stage_extracting("polls")
    assert polls.serverless == ("polls",) and polls.services == ("users",)
    assert polls.services_own == ("users", "polls")
    last = migration.stage(migration.last)
    assert last.serverless == ("polls",) and "polls" not in last.services
    assert migration.serverless == frozenset({"polls"})
    assert migration.stage(1).serverless == ()


def test_its_routes_go_to_the_function_and_the_page_route_to_the_bucket(tmp_path: Path) -> None:
    table = workspace(tmp_path).migration().stage_extracting("polls").table
    routes = {route.name: route for route in table.routes}
    assert routes["polls.results_page"].service_upstream == "polls-pages"
    assert routes["polls.results_page"].mode.value == "service"
    assert routes["polls.vote"].service_upstream == "polls"
    assert routes["forum.list_threads"].upstream is None


def places(space: Workspace, tmp_path: Path) -> Places:
    urls = {name: f"sqlite:///{tmp_path}/{name}.sqlite3" for name in
            ("monolith", "users", "polls", "forum", "search", "bus")}  # fmt: skip
    return Places(space, urls, "secret-0123456789abcdef", "admin", "system-1", tmp_path,
                  traces=False)  # fmt: skip


def port_of(name: str) -> int:
    return 23000 + sum(map(ord, name)) % 997


def test_the_runtime_runs_functions_an_emulator_and_the_items_sync_instead_of_a_service(
    tmp_path: Path,
) -> None:
    space = workspace(tmp_path)
    migration = space.migration()
    shape = stage_topology(migration, migration.stage_extracting("polls").number)
    assert shape.serverless == ("polls",) and shape.services == ("users",)
    specs = {spec.name: spec for spec in plan(shape, places(space, tmp_path), port_of)}
    assert "polls" not in specs and "polls-consumer" not in specs
    names = list(specs)
    assert names.index(EMULATOR) < names.index("polls-sync") < names.index("proxy")
    sync = specs["polls-sync"]
    assert sync.argv[1:] == ("-m", "strangler.serverless.data.sync", "polls")
    assert sync.env["AWS_ENDPOINT_URL"] == specs[EMULATOR].url
    assert sync.env["MONOLITH_DATABASE_URL"].endswith("monolith.sqlite3")
    assert sync.env["POLLS_TABLE"] == "polls"
    upstreams = json.loads(specs["proxy"].env["PROXY_UPSTREAMS"])
    assert upstreams["polls"] == "function:extracted.polls.serverless:handler"
    assert upstreams["polls-pages"] == "bucket:polls-results/results/{poll_id}.html"


def test_a_move_under_way_runs_the_functions_once_the_state_says_so(tmp_path: Path) -> None:
    migration = workspace(tmp_path).migration()
    stage = migration.stage_extracting("polls")
    state = MigrationState(stage=stage.number - 1)
    state.contexts["polls"] = ContextState(owner="service")
    shape = topology(migration, state)
    assert "polls" in shape.serverless and "polls" not in shape.services
    assert "polls" in shape.syncs


def test_nginx_leaves_the_routes_of_functions_to_the_python_proxy_once_extracted(
    tmp_path: Path,
) -> None:
    migration = workspace(tmp_path).migration()
    before = MigrationState(stage=1, routes=table_document(migration.stage(1).table))
    assert "polls" not in migrating(before, migration)
    number = migration.stage_extracting("polls").number
    after = MigrationState(stage=number, routes=table_document(migration.stage(number).table))
    assert "polls" in migrating(after, migration)
    assert "users" not in migrating(after, migration)


def test_a_serverless_stage_of_a_context_without_items_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    text = BUNDLED.read_text().replace('items = "extracted.polls.serverless.table:ITEMS"\n', "")
    path = serverless_stage(tmp_path, text)
    [problem] = refused(path)
    assert "declaring `table` and `items`" in problem
    assert problem.startswith(f"{path}:")


def test_the_last_stage_cannot_leave_unknown_paths_to_a_function(tmp_path: Path) -> None:
    text = BUNDLED.read_text().replace('unmatched = "users"', 'unmatched = "polls"')
    [problem] = refused(serverless_stage(tmp_path, text))
    assert "runs as functions" in problem


def test_a_target_without_an_extraction_is_refused(tmp_path: Path) -> None:
    text = BUNDLED.read_text().replace(
        "retire_monolith = true\n", 'retire_monolith = true\ntarget = "serverless"\n'
    )
    path = tmp_path / "strangler.toml"
    path.write_text(text)
    [problem] = refused(path)
    assert "extract one" in problem
    assert line_of(path, "retire_monolith") > 0


@pytest.mark.parametrize("target", ["lambda", ""])
def test_an_unknown_target_is_refused(tmp_path: Path, target: str) -> None:
    path = tmp_path / "strangler.toml"
    path.write_text(
        BUNDLED.read_text().replace(POLLS_STAGE, POLLS_STAGE + f'target = "{target}"\n', 1)
    )
    [problem] = refused(path)
    assert "target" in problem
