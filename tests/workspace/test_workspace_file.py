"""The workspace file: the bundled one describes the forum's migration; a wrong one is refused
with the line of each problem, and the stages' tables follow from the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.workspace import BUNDLED, WorkspaceError, find_workspace, load_workspace
from strangler.workspace.stages import StageError
from strangler_proxy.table import Mode, parse_table


def broken(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the bundled workspace file with `old` replaced by `new`."""
    text = BUNDLED.read_text()
    assert old in text
    path = tmp_path / "strangler.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(WorkspaceError) as refused:
        load_workspace(path).migration()
    return refused.value.problems


def line_of(path: Path, fragment: str) -> int:
    text = path.read_text()
    return text[: text.index(fragment)].count("\n") + 1


def test_the_bundled_stages_extract_one_context_at_a_time_then_retire_the_monolith() -> None:
    migration = find_workspace().migration()
    assert [stage.extracts for stage in migration.stages] == [
        None, "users", "polls", "forum", "search", None,
    ]  # fmt: skip
    assert migration.stage(3).services_own == ("users", "polls", "forum")
    last = migration.stage(migration.last)
    assert not last.monolith_serves and last.table.unmatched == "users"
    assert all(route.mode is Mode.SERVICE for route in last.table.routes)


def test_each_stage_table_serves_exactly_the_contexts_extracted_so_far() -> None:
    for stage in find_workspace().migration().stages:
        for route in stage.table.routes:
            expected = Mode.SERVICE if route.context in stage.services else Mode.MONOLITH
            assert route.mode is expected, (stage.number, route.name)
            assert route.owner.value == expected.value, (stage.number, route.name)


def test_a_rendered_table_reads_back_as_the_proxy_reads_a_file() -> None:
    stage = find_workspace().migration().stage(2)
    assert parse_table(stage.table_text(), "stage 2", ["users", "polls"]) == stage.table


def test_once_the_monolith_retires_a_wrong_method_on_a_known_path_reaches_its_service() -> None:
    last = find_workspace().migration().stage(5)
    other = last.table.route("forum.list_posts.other_methods")
    assert other is not None and other.methods == ["*"] and other.context == "forum"


def test_extracting_a_context_before_what_it_needs_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    path = broken(tmp_path, 'extract = "users"', 'extract = "forum"')
    [problem] = problems_of(path)
    assert "forum needs ['users'] extracted first" in problem
    header = line_of(path, 'extract = "forum"') - 3  # its [[stages]] line
    assert problem.startswith(f"{path}:{header}: stages.0:")


def test_an_unknown_field_is_refused_with_its_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "needs = [\"forum\"]", "neds = [\"forum\"]")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'neds =')}: contexts.search.neds:")


def test_a_route_claimed_by_two_contexts_is_refused(tmp_path: Path) -> None:
    claim = 'routes = { blueprints = ["search"], endpoints = ["forum.get_thread"] }'
    path = broken(tmp_path, 'routes = { blueprints = ["search"] }', claim)
    [problem] = problems_of(path)
    assert "route 'forum.get_thread' is claimed by forum too" in problem


def test_a_shadow_skip_of_another_context_s_route_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, 'route = "polls.results_page"', 'route = "users.me"')
    [problem] = problems_of(path)
    assert "'users.me' is not a route of polls" in problem


def test_a_file_that_is_not_toml_names_the_line_it_stopped_at(tmp_path: Path) -> None:
    path = broken(tmp_path, "[[stages]]", "[[stages]")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, '[[stages]')}: not valid TOML")


def test_a_reserved_context_name_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "[contexts.users]", "[contexts.proxy]")
    assert any("'proxy' is reserved" in problem for problem in problems_of(path))


def test_asking_for_a_stage_that_does_not_exist_names_the_ones_that_do() -> None:
    with pytest.raises(StageError, match=r"there is no stage 9; stages are 0\.\.5"):
        find_workspace().migration().stage(9)


def test_a_folder_without_a_workspace_file_runs_the_bundled_example(tmp_path: Path) -> None:
    found = find_workspace(tmp_path)
    assert found.is_bundled and found.file == BUNDLED
