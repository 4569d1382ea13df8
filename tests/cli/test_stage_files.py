"""The stage files: the shipped ones agree with each other; a wrong one is refused by line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strangler.conductor.stages import STAGES, StageFileError, load_migration
from strangler_proxy.table import Mode


@pytest.fixture
def stages(tmp_path: Path) -> Path:
    """A copy of the shipped stage files, to break."""
    folder = tmp_path / "stages"
    shutil.copytree(STAGES, folder)
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(StageFileError) as refused:
        load_migration(folder)
    return refused.value.problems


def test_the_shipped_stages_extract_one_context_at_a_time_then_retire_the_monolith() -> None:
    migration = load_migration()
    assert [stage.extracts for stage in migration.stages] == [
        None, "users", "polls", "forum", "search", None,
    ]  # fmt: skip
    assert migration.stage(3).services_own == ("users", "polls", "forum")
    last = migration.stage(migration.last)
    assert not last.monolith_serves and last.table.unmatched != "monolith"
    assert all(route.mode is Mode.SERVICE for route in last.table.routes)


def test_each_stage_table_serves_exactly_the_contexts_extracted_so_far() -> None:
    for stage in load_migration().stages:
        for route in stage.table.routes:
            expected = Mode.SERVICE if route.context in stage.services else Mode.MONOLITH
            assert route.mode is expected, (stage.number, route.name)
            assert route.owner.value == expected.value, (stage.number, route.name)


def test_a_route_left_behind_in_a_stage_table_is_refused_with_its_line(stages: Path) -> None:
    table = stages / "stage2.toml"
    text = table.read_text()
    vote = text.index('name = "polls.vote"')
    mode = text.index('mode = "service"', vote)
    table.write_text(text[:mode] + 'mode = "monolith"' + text[mode + len('mode = "service"') :])
    line = text[:mode].count("\n") + 1
    [problem] = problems_of(stages)
    assert problem.startswith(f"{table}:{line}: routes.")
    assert "polls.vote must be active in mode service" in problem


def test_a_stage_table_that_is_not_a_table_is_refused_with_its_line(stages: Path) -> None:
    (stages / "stage4.toml").write_text('[[routes]]\nname = "x"\nmethods = ["GET"]\nmode = 3\n')
    found = problems_of(stages)
    assert any(
        problem.startswith(f"{stages / 'stage4.toml'}:4: routes.0.mode") for problem in found
    )


def test_the_last_stage_must_send_unmatched_paths_to_a_service(stages: Path) -> None:
    table = stages / "stage5.toml"
    table.write_text(table.read_text().replace('unmatched = "users"\n', ""))
    [problem] = problems_of(stages)
    assert problem.startswith(f"{table}:1: unmatched: the monolith receives no traffic")


def test_extracting_a_context_before_what_it_needs_is_refused_with_its_line(stages: Path) -> None:
    catalogue = stages / "stages.toml"
    text = catalogue.read_text()
    text = (
        text.replace('extracts = "users"', 'extracts = "TEMP"')
        .replace('extracts = "forum"', 'extracts = "users"')
        .replace('extracts = "TEMP"', 'extracts = "forum"')
    )
    catalogue.write_text(text)
    found = problems_of(stages)
    stage_line = text[: text.index('extracts = "forum"')].count("\n")  # its [[stages]] header
    assert any(
        problem.startswith(f"{catalogue}:{stage_line - 3}:") and "forum needs ['users']" in problem
        for problem in found
    ), found


def test_an_unknown_field_in_the_stage_list_is_refused_with_its_line(stages: Path) -> None:
    catalogue = stages / "stages.toml"
    catalogue.write_text(catalogue.read_text().replace("moves_data = false", "moves_dta = false"))
    found = problems_of(stages)
    assert any("contexts.search.moves_dta" in problem for problem in found)


def test_asking_for_a_stage_that_does_not_exist_names_the_ones_that_do() -> None:
    with pytest.raises(StageFileError, match=r"there is no stage 9; stages are 0\.\.5"):
        load_migration().stage(9)
